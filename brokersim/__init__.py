"""brokersim: an OpenAlgo-compatible paper broker.

Many simulated OpenAlgo servers (one per paper account) share one seeded market in
one asyncio process. Django-free on purpose: AlgoMirror's tests, benchmarks and the
`make run` demo all talk to it over the wire exactly as they would to real OpenAlgo.
"""

__version__ = "0.1.0"
