"""Code reasoning: programs run against test cases in a local sandbox (R1's second rule reward).

- :mod:`r1lab.code.sandbox` — the local sandbox (limits, namespaces, a dedicated uid, a worker pool)
- :mod:`r1lab.code.remote` — the same interface over a Piston-compatible HTTP endpoint
- :mod:`r1lab.code.problems` — problems with tests: the row layouts, code extraction, output comparison
- :mod:`r1lab.code.judging` — one completion against its problem's tests → a verdict
- :mod:`r1lab.code.bench` — sandbox throughput, the pool against one program at a time
"""
