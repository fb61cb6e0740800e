/* scenario.h - `parley test`: conversation tests in Lua against the real scenario, engine and
 * rules, on the sandbox provider with a test-controlled clock. docs/testing.md describes the
 * DSL. */
#ifndef PL_SCENARIO_H
#define PL_SCENARIO_H

/* Run the test files (none: every NAME_test.lua in tests/scenarios and examples/NAME/tests).
 * Prints one line per test and "scenarios: N passed, N failed". Returns 0 when every test
 * passed (and there was at least one), else 1. verbose shows Parley's log. */
int pl_scenario_run(const char *const *files, int nfiles, const char *stdlib_dir, int verbose);

#endif
