/*
 * probe.c — one file compiled as if it sat in a layer of runtime/, with
 * that layer's include directories, to prove which headers the layer can
 * and cannot reach (CMakeLists.txt beside it). PROBE_HEADER names the one
 * header it includes.
 */
#include PROBE_HEADER

int fl_layer_probe(void);
int fl_layer_probe(void) { return 0; }
