"""A GB/T 32960 terminal for the demo and the benchmark (the tests use rtm-con instead)."""
