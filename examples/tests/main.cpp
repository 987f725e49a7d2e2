// The examples' test executable: Catch2's main (the tests are bot_test.cpp and emulator_test.cpp).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
