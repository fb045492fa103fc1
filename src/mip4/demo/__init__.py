"""mip4.demo: the instruments of ``mip4 lab demo``.

The demo moves the mobile node home → A → B → C → home while TCP streams and a UDP probe
stream run, and proves that Mobile IP kept them alive. The instruments are small programs
that run inside the lab's namespaces and hand their results back as JSON lines on stdout:

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

:mod:`mip4.demo.runner` starts them through the lab (``Lab.popen``) and collects their
reports. The orchestrator's part, in outline::

    from mip4.demo.report import ConnectionSpec, MoveRecord, build_report
    from mip4.demo.runner import ProbePair, StreamPair
    from mip4.demo.plot import plot

    home = str(lab.address("mn")); cn = str(lab.address("cn"))
    t0 = time.time()
    s1 = StreamPair.start(lab.popen, ConnectionSpec("cn dials mn", "cn", "mn"),
                          address=home, listen=home, port=5001, seed=1)
    s2 = StreamPair.start(lab.popen, ConnectionSpec("mn dials cn", "mn", "cn"),
                          address=cn, listen=cn, bind=home, port=5002, seed=2)
    probes = ProbePair.start(lab.popen, sender_node="cn", receiver_node="mn",
                             address=home, listen=home, port=5003)
    moves = []
    for to in ("a", "b", "c", "home"):
        started = time.time(); lab.move(to)
        ... wait for the mobile node's registration: finished, care-of address, RTT ...
        moves.append(MoveRecord(frm, to, started, finished, coa, rtt_ms, via))
        ... show s1.progress() / s2.progress() while the streams run ...
    for p in (s1, s2, probes): p.stop()
    conns = [s1.reports(), s2.reports()]
    sender, receiver = probes.reports()
    report = build_report(moves, conns, probe_sender=sender, probe_receiver=receiver,
                          probe_path="cn → mn", started_at=t0, finished_at=time.time())
    print(report.render_text()); report.write_json(out / "demo.json")
    plot(report, out / "demo.png")
    return report.exit_status()

Every timestamp the instruments exchange is wall-clock ``time.time()`` seconds: the
namespaces share the host's clock, so the orchestrator's move times and the instruments'
logs line up.
"""
