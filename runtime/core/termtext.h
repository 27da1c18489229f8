/*
 * termtext.h — text made safe to show on a terminal.
 *
 * Error messages, params and log lines carry text from outside (a server's
 * error body, a file, a child's stderr). Written raw to a terminal, a
 * control sequence in it can set the window title, clear the screen, move
 * the cursor over earlier lines or, on some terminals, answer back as if
 * typed. Escaped, the same bytes show as what they are.
 */
#ifndef FL_TERMTEXT_H
#define FL_TERMTEXT_H

#include <stddef.h>

#include "buf.h"

/*
 * Appends s[0..n) to out with every byte a terminal would act on written
 * as a visible escape "\xHH" (ESC is "\x1b"): the C0 controls except
 * newline and tab (carriage return and backspace too, which can hide what
 * went before), DEL, and the C1 controls, both as raw bytes 0x80-0x9F that
 * are not part of valid UTF-8 and as the UTF-8 encodings of U+0080-U+009F
 * ("\xc2\x9b"). Valid UTF-8 text otherwise stays byte for byte.
 */
void fl_term_escape(fl_buf *out, const char *s, size_t n);

/* Whether fl_term_escape would change s[0..n). */
int fl_term_needs_escape(const char *s, size_t n);

#endif
