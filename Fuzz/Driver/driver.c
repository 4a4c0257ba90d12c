#include "CFuzzerDriver.h"

// scripts/fuzz compiles with -Xcc -DFUZZING and links libFuzzer (-sanitize=fuzzer);
// a plain build has no libFuzzer to call, and the harnesses replay their corpus.
#ifdef FUZZING
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int CFuzzerDriver_isLinked(void) { return 1; }

int CFuzzerDriver_run(int argc, char **argv, CFuzzerDriver_Callback callback) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
#else
int CFuzzerDriver_isLinked(void) { return 0; }

int CFuzzerDriver_run(int argc, char **argv, CFuzzerDriver_Callback callback) {
    (void)argc; (void)argv; (void)callback;
    return -1;
}
#endif
