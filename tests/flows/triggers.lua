-- Every trigger rule against a failed, a successful and a skipped upstream.
-- exit: 1
-- stderr: ^  after_fail_all_success +TriggerFailed
-- stderr: ^  after_fail_all_done +Success
-- stderr: ^  after_fail_all_failed +Success
-- stderr: ^  after_ok_all_failed +Skipped
-- stderr: ^  mixed_any_success +Success
-- stderr: ^  after_fail_any_success +TriggerFailed
-- stderr: ^  mixed_any_failed +Success
-- stderr: ^  after_ok_any_failed +Skipped
-- stderr: ^  after_fail_none_failed +TriggerFailed
-- stderr: ^  after_skip_none_failed +Success
-- stderr: ^  after_skip_all_success +Skipped
-- stderr: ^  after_skip_min_one +Skipped
-- stderr: ^  mixed_skip_min_one +Success
-- stderr: ^  after_skip_none_skipped +Skipped
-- stderr: ^  after_fail_none_skipped +Success
-- stderr: ^  after_fail_always +Success
-- stderr: ^  fn_true +Success
-- stderr: ^  fn_false_after_fail +TriggerFailed
-- stderr: ^  fn_false_after_ok +Skipped
-- stderr: ^  fn_raises +TriggerFailed +0 .*trigger function failed: .*no rule today
-- stderr: ^  chained +TriggerFailed
-- stderr: after_fail_all_success: TriggerFailed \(trigger rule all_success not met: upstream fails Failed\)
-- stderr: flow 'triggers' Failed
local flow = require "flowlua"

local fails = flow.task("fails", function() error("boom") end)
local ok = flow.task("ok", function() return 1 end)
local skips = flow.task("skips", function() flow.skip("nothing to do") end)
local function t(name, trigger)
  return flow.task(name, { trigger = trigger }, function() return name end)
end

return flow.define("triggers", {}, function()
  local f, o, s = fails(), ok(), skips()
  t("after_fail_all_success", "all_success")():after(f)
  t("after_fail_all_done", "all_done")():after(f)
  t("after_fail_all_failed", "all_failed")():after(f)
  t("after_ok_all_failed", "all_failed")():after(o)
  t("mixed_any_success", "any_success")():after(f, o)
  t("after_fail_any_success", "any_success")():after(f)
  t("mixed_any_failed", "any_failed")():after(f, o)
  t("after_ok_any_failed", "any_failed")():after(o)
  t("after_fail_none_failed", "none_failed")():after(f)
  t("after_skip_none_failed", "none_failed")():after(s, o)
  t("after_skip_all_success", "all_success")():after(s)
  t("after_skip_min_one", "none_failed_min_one_success")():after(s)
  t("mixed_skip_min_one", "none_failed_min_one_success")():after(s, o)
  t("after_skip_none_skipped", "none_skipped")():after(s)
  t("after_fail_none_skipped", "none_skipped")():after(f)
  t("after_fail_always", "always")():after(f)
  t("fn_true", function(states) return states.fails == "Failed" and states.ok == "Success" end)():after(f, o)
  t("fn_false_after_fail", function() return false end)():after(f)
  t("fn_false_after_ok", function() return false end)():after(o)
  t("fn_raises", function() error("no rule today") end)():after(o)
  local a = t("chained_up", "all_success")():after(f)
  t("chained", "all_success")():after(a)
end)
