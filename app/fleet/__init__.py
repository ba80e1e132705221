"""The fleet simulator (docs/dispatch.md): many hosts' agents, the real agent code, in one
process, for scale tests and benchmarks."""
