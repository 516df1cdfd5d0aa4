// The one doctest main of tapegrad_tests; each TEST_CASE is registered with CTest on its own.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
