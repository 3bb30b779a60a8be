// Placeholder: filled in by the module's author.
#include <doctest/doctest.h>
