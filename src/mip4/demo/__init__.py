"""mip4.demo: the instruments of ``mip4 lab demo``.

The demo moves the mobile node home → A → B → C → home while TCP streams and a UDP probe
stream run, and proves that Mobile IP kept them alive. The instruments are small programs
that run inside the lab's namespaces and hand their results back as JSON:

``python -m mip4.demo.traffic server|client``
    one TCP connection streaming a seeded pseudo-random byte sequence in both directions;
    every received byte is checked against the sequence at its offset
    (:mod:`mip4.demo.traffic`).
``python -m mip4.demo.probe send|recv``
    sequence-numbered, timestamped UDP datagrams at a fixed rate; pure functions turn the
    logs into per-move interruption and loss (:mod:`mip4.demo.probe`).
``python -m mip4.demo.report REPORT.json``
    the per-move and per-connection tables and the verdict (:mod:`mip4.demo.report`).
``python -m mip4.demo.plot REPORT.json OUT.png|OUT.svg``
    throughput over time with the moves marked (:mod:`mip4.demo.plot`).

Every timestamp the instruments exchange is wall-clock ``time.time()`` seconds: the
namespaces share the host's clock, so the orchestrator's move times and the instruments'
logs line up.
"""
