"""The exit-code contract every command keeps (documented in the README)."""

EXIT_OK = 0  # nothing at or above the --fail-on threshold
EXIT_FINDINGS = 1  # findings at or above the threshold
EXIT_INPUT = 2  # input, configuration or usage errors (even when there are findings too)
EXIT_INTERNAL = 3  # internal error
