"""Operator tools: capture files, the ``mip4 decode`` decoder, rendering, and the codec benchmark.

- :mod:`mip4.tools.pcap` -- a pure-Python pcap / pcapng reader and a pcap writer.
- :mod:`mip4.tools.decode` -- find Mobile IP messages in captures, hex or raw files, decode
  them and verify their authenticators; the JSON form of every message and extension.
- :mod:`mip4.tools.render` -- the human-readable form.
- :mod:`mip4.tools.sample` -- builds the bundled sample capture (``mip4/data/sample.pcap``).
- :mod:`mip4.tools.bench` -- ``mip4 bench codec``: our codec against scapy.
"""
