# flowlua_layer(NAME USES LAYER...): the OBJECT library flowlua_NAME of
# every .c file in runtime/NAME, which sees the public header, its own
# folder and the folders of the layers it USES, and nothing else: a header
# of any other layer is not found, so including it fails the build.
function(flowlua_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 LAYER "" "" "USES")
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/runtime/${name}/*.c)
  add_library(flowlua_${name} OBJECT ${sources})
  set_target_properties(flowlua_${name} PROPERTIES
    POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
  set(dirs ${PROJECT_SOURCE_DIR}/runtime/${name})
  foreach(used ${LAYER_USES})
    list(APPEND dirs ${PROJECT_SOURCE_DIR}/runtime/${used})
  endforeach()
  target_include_directories(flowlua_${name} PRIVATE
    ${PROJECT_SOURCE_DIR}/include ${dirs})
  target_link_libraries(flowlua_${name} PRIVATE flowlua_build_flags)
endfunction()
