// GNU libidn2: IDNA2008 with UTS #46 mapping. Thread-safe, no global state to set
// up; every string it returns is freed with idn2_free. Used only by
// Sources/Smtp/Validation/IDNA.swift.
#include <idn2.h>
