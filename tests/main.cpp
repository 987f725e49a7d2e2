// Catch2's main for every test executable of the tree (the object library dbactor_catch_main).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
