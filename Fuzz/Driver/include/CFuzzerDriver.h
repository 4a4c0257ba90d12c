#ifndef CFUZZERDRIVER_H
#define CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

/// One fuzz input: libFuzzer's LLVMFuzzerTestOneInput signature.
typedef int (*CFuzzerDriver_Callback)(const uint8_t *_Nonnull data, size_t size);

/// 1 when this program was built by scripts/fuzz (libFuzzer linked), else 0.
int CFuzzerDriver_isLinked(void);

/// Runs libFuzzer's driver (LLVMFuzzerRunDriver) with the program's arguments.
/// Why this exists: SwiftPM renames an executable's `main` and points the `main`
/// symbol at it, so libFuzzer's own `main` can never run; the harness's main
/// calls the driver instead. Returns -1 when libFuzzer is not linked. Not
/// thread-safe; call once, from main.
int CFuzzerDriver_run(int argc, char *_Nullable *_Nonnull argv, CFuzzerDriver_Callback _Nonnull callback);

#endif
