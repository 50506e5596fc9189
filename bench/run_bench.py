#!/usr/bin/python3
"""Runs every scenario of issue 7 against a Release build and prints the table.

Started by scripts/bench, which builds first. Each figure is printed next to a
reference measured in the same run (the raw SQLite limit, the library call the
daemon makes, the baseline before a snapshot) and next to the issue's target.

Processes are real: deltatap-sim serves the stream, deltatapd runs as it would
under systemd (storage and journal on, NOTIFY_SOCKET for READY=1), and the
bench_* programs in <build>/bench measure the parts. Every process started
here is stopped here, by its pid.
"""

import argparse
import glob
import calendar
import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024

FULL = dict(ingest=300_000, small=100_000, small_hot=10_000, large=1_000_000,
            large_hot=100_000, journal=100_000, query_iterations=10_000,
            http_iterations=3_000, raw_repeat=5, serialize=5, snapshots=3,
            stream_rate=1_000, idle_seconds=60, analytics_sessions=20_000,
            analytics_iterations=300, pg_rows=100_000, pg_export=1_000_000, pg_lag_seconds=30,
            capacity=1_000_000, capacity_large=10_000_000)
QUICK = dict(ingest=30_000, small=10_000, small_hot=1_000, large=100_000,
             large_hot=10_000, journal=10_000, query_iterations=2_000,
             http_iterations=500, raw_repeat=1, serialize=3, snapshots=2,
             stream_rate=1_000, idle_seconds=15, analytics_sessions=2_000,
             analytics_iterations=50, pg_rows=20_000, pg_export=100_000, pg_lag_seconds=10,
             capacity=100_000, capacity_large=1_000_000)


class PgServer:
    """A PostgreSQL of the bench's own, as tests/support/postgres_fixture.cc
    starts one: initdb in a temporary directory (as `nobody` when run as root,
    since PostgreSQL refuses root), listening on a Unix socket there only."""

    def __init__(self, work):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL's server programs are not installed (scripts/setup)")
        self.bin = os.path.dirname(bins[-1])
        # Its own directory, not under the (0700) work directory, which
        # `nobody` could not enter.
        self.dir = tempfile.mkdtemp(prefix="deltatap-bench-pg.")
        self.prefix = []
        if os.geteuid() == 0:
            os.chown(self.dir, pwd.getpwnam("nobody").pw_uid, -1)
            self.prefix = ["runuser", "-u", "nobody", "--"]
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                 f"-k {self.dir} -p {self.port} -c listen_addresses=''", "start")
        self.url = f"host={self.dir} port={self.port} user=postgres dbname=postgres"

    def run(self, tool, *args):
        subprocess.run(self.prefix + [os.path.join(self.bin, tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self):
        self.run("pg_ctl", "-D", self.data, "-m", "fast", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class DaemonExited(Exception):
    """deltatapd ended before READY=1; the message holds its exit code and errors."""


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_for(condition, timeout, what, interval=0.01):
    """Polls `condition` until it returns something truthy; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_major_faults(pid):
    """Page faults that had to read from disk (code or file pages evicted), all threads."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[9])  # majflt


def proc_memory(pid):
    """VmRSS and VmHWM in bytes."""
    values = {}
    for line in read_text(f"/proc/{pid}/status").splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def proc_wakeups(pid):
    """Voluntary context switches so far: how often the process slept and woke."""
    for line in read_text(f"/proc/{pid}/status").splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def metric_in(page, name):
    """The sum of a metric's samples (all label sets) in a /metrics page."""
    total = 0.0
    for line in page.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def load_average():
    return read_text("/proc/loadavg").split()[:3]


class Child:
    """A process with its output in files; stop() ends it by pid."""

    def __init__(self, argv, directory, name, env=None, cwd=None):
        self.name = name
        self.out_path = os.path.join(directory, name + ".out")
        self.err_path = os.path.join(directory, name + ".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        self.pid = self.process.pid

    def stdout(self):
        return read_text(self.out_path)

    def stderr(self):
        return read_text(self.err_path)

    def stop(self, timeout=120):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class Bench:
    def __init__(self, build, work, sizes, keep=False):
        self.build = build
        self.work = work
        self.sizes = sizes
        self.keep = keep
        self.children = []
        self.results = {}

    # --- processes -------------------------------------------------------------

    def tool(self, name):
        return os.path.join(self.build, "bench", "bench_" + name)

    def run_tool(self, name, *args):
        argv = [self.tool(name), *map(str, args)]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start_sim(self, name, *args):
        sim = Child([os.path.join(self.build, "deltatap-sim"), "--listen", "127.0.0.1:0",
                     *map(str, args)], self.work, name)
        self.children.append(sim)
        sim.port = wait_for(lambda: self.logged_port(sim), 10, "the simulator to listen")
        return sim

    @staticmethod
    def logged_port(sim):
        text = sim.stderr()
        at = text.find("listening on ")
        if at < 0:
            return None
        address = text[at:].split()[2]
        return int(address.rsplit(":", 1)[1])

    def start_daemon(self, name, data_dir, url, snapshot_interval_ms=60_000, log_level="warning",
                     args=()):
        """Starts deltatapd the way systemd would and waits for READY=1.

        Returns the child with .port (HTTP) and .ready_seconds (spawn to READY)."""
        notify_path = os.path.join(self.work, name + ".notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("JOURNAL_STREAM", "INVOCATION_ID", "WATCHDOG_USEC", "WATCHDOG_PID")}
        env.update(PERSIST="1", DB_PATH=os.path.join(data_dir, "sessions.sqlite"),
                   DELTATAP_URL=url, DELTATAP_HTTP=f"127.0.0.1:{port}",
                   DELTATAP_LOG_FORMAT="text", DELTATAP_LOG_LEVEL=log_level,
                   SNAPSHOT_INTERVAL=str(snapshot_interval_ms), NOTIFY_SOCKET=notify_path,
                   # As systemd/deltatap.service starts it: the heap on huge pages.
                   GLIBC_TUNABLES="glibc.malloc.hugetlb=1")
        started = time.monotonic()
        started_wall = time.time()
        daemon = Child([os.path.join(self.build, "deltatapd"), *args], self.work, name, env=env,
                       cwd=self.work)
        self.children.append(daemon)
        notify.settimeout(0.2)
        try:
            while True:
                try:
                    message = notify.recv(4096).decode()
                except socket.timeout:
                    if daemon.process.poll() is not None:
                        self.children.remove(daemon)
                        errors = [line for line in daemon.stderr().splitlines() if " error: " in line]
                        raise DaemonExited(f"exit {daemon.process.returncode} after "
                                           f"{time.monotonic() - started:.2f} s: "
                                           + " / ".join(errors[:2]))
                    if time.monotonic() - started > 300:
                        raise RuntimeError(f"{name} never said READY=1")
                    continue
                if "READY=1" in message.split("\n"):
                    break
        finally:
            notify.close()
        daemon.ready_seconds = time.monotonic() - started
        daemon.started_wall = started_wall
        daemon.ready_at = time.monotonic()
        daemon.port = port
        return daemon

    @staticmethod
    def log_times(daemon, messages):
        """Seconds from spawn to each of the daemon's text log lines `messages`."""
        times = {}
        for line in daemon.stderr().splitlines():
            stamp, _, rest = line.partition(" ")
            for message in messages:
                if message not in times and message in rest:
                    moment = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
                    moment += float(stamp[19:-1] or 0)
                    times[message] = moment - daemon.started_wall
        return times

    def stop(self, child, timeout=300):
        code = child.stop(timeout)
        self.children.remove(child)
        return code

    def stop_all(self):
        for child in reversed(self.children):
            child.stop(30)
        self.children.clear()

    # --- HTTP --------------------------------------------------------------------

    @staticmethod
    def http(port, path, method="GET"):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.read().decode()

    def metric(self, port, name):
        return metric_in(self.http(port, "/metrics"), name)

    # --- scenarios ---------------------------------------------------------------

    def ingest(self, fmt):
        # As many daemon runs as raw-insert repeats, the best of each kept, so
        # that both sides of the ratio are measured the same way.
        runs = [self.ingest_once(fmt, i) for i in range(self.sizes["raw_repeat"])]
        result = max(runs, key=lambda r: r["rate"])
        result["rates"] = [r["rate"] for r in runs]
        # Every run must have stored every delta, not only the best one.
        result["stored"] = min(r["stored"] for r in runs)
        result["in_file"] = min(r["in_file"] for r in runs)
        result["reconnects"] = sum(r["reconnects"] for r in runs)
        result["backpressure"] = sum(r["backpressure"] for r in runs)
        db = result["db"]
        result["raw"] = self.run_tool("raw_insert", "--from", db, "--repeat", self.sizes["raw_repeat"])
        result["raw_tuned"] = self.run_tool("raw_insert", "--from", db, "--tuned",
                                            "--repeat", self.sizes["raw_repeat"])
        log(f"raw limit: {result['raw']['rows_per_s']:.0f}/s, "
            f"tuned {result['raw_tuned']['rows_per_s']:.0f}/s")
        if fmt == "session_update":
            log("the io thread's cost per delta, part by part")
            result["budget"] = self.run_tool("ingest_budget", "--from", db)
        # Each run leaves a 400 MB database; while its dirty pages are written
        # back they take CPU from the next run, so they go as soon as possible.
        # The best format B database is kept: make_stores() copies its states.
        if not self.keep:
            for r in runs:
                if not (fmt == "session_update" and r is result):
                    shutil.rmtree(os.path.dirname(r["db"]), ignore_errors=True)
        self.results.setdefault("ingest", {})[fmt] = result

    def ingest_once(self, fmt, attempt, compression=None):
        """One daemon run that takes sizes["ingest"] simulator deltas at full
        speed; compression, when given, is [storage] compression."""
        n = self.sizes["ingest"]
        label = f"{fmt}-{attempt}" + (f"-{compression}" if compression else "")
        log(f"ingest: {n} deltas, format {fmt}, run {attempt + 1}"
            + (f", compression {compression}" if compression else ""))
        data = os.path.join(self.work, f"ingest-{label}")
        args = ()
        if compression:
            conf = os.path.join(self.work, f"ingest-{label}.conf")
            with open(conf, "w") as f:
                f.write(f"[storage]\ncompression = {compression}\n")
            args = ("--config", conf)
        # The previous run's files are written back now, not inside this run's clock.
        os.sync()
        sim = self.start_sim(f"sim-{label}", "--count", n, "--format", fmt, "--rate", 0,
                             "--seed", 7)
        daemon = self.start_daemon(f"deltatapd-ingest-{label}", data,
                                   f"ws://127.0.0.1:{sim.port}/ws", args=args)
        cpu_start = proc_cpu_seconds(daemon.pid)
        sim_cpu_start = proc_cpu_seconds(sim.pid)
        # Only the simulator is watched while it sends: a scrape costs the daemon.
        wait_for(lambda: '"sent"' in sim.stdout(), 900, "the simulator to send everything", 0.02)
        wait_for(lambda: self.metric(daemon.port, "deltatap_deltas_stored_total") >= n, 300,
                 f"{n} deltas stored", 0.02)
        seconds = time.monotonic() - daemon.ready_at
        cpu = proc_cpu_seconds(daemon.pid) - cpu_start
        sim_cpu = proc_cpu_seconds(sim.pid) - sim_cpu_start
        _, peak = proc_memory(daemon.pid)
        stored = self.metric(daemon.port, "deltatap_deltas_stored_total")
        reconnects = self.metric(daemon.port, "deltatap_websocket_reconnects_total")
        self.stop(sim)
        code = self.stop(daemon)
        db = os.path.join(data, "sessions.sqlite")
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            in_file = connection.execute("SELECT COUNT(*) FROM session_deltas").fetchone()[0]
        result = dict(deltas=n, stored=stored, seconds=seconds, rate=n / seconds, cpu=cpu,
                      sim_cpu=sim_cpu, peak_rss=peak, reconnects=reconnects,
                      backpressure=sim.stderr().count("backpressure"), exit_code=code,
                      in_file=in_file, db=db)
        log(f"ingest {fmt}: {result['rate']:.0f}/s, cpu {cpu:.2f} s, peak {peak / MB:.0f} MB")
        return result

    def ingest_under_load(self, fmt):
        """As ingest_once, with the queries of issue 12 running all along: four
        clients looping on GET /api/sessions and two on GET /api/export. The
        stream lane must keep up: no reconnect, no backpressure close."""
        n = self.sizes["ingest"]
        log(f"ingest under query load: {n} deltas, format {fmt}")
        data = os.path.join(self.work, f"ingest-load-{fmt}")
        os.sync()
        sim = self.start_sim(f"sim-load-{fmt}", "--count", n, "--format", fmt, "--rate", 0,
                             "--seed", 7)
        daemon = self.start_daemon(f"deltatapd-load-{fmt}", data, f"ws://127.0.0.1:{sim.port}/ws")
        done = threading.Event()
        answered = {"sessions": 0, "export_bytes": 0, "exports": 0, "errors": 0}
        lock = threading.Lock()

        def loop(path, key):
            while not done.is_set():
                try:
                    request = urllib.request.Request(f"http://127.0.0.1:{daemon.port}{path}")
                    with urllib.request.urlopen(request, timeout=600) as response:
                        size = 0
                        while chunk := response.read(1 << 20):
                            size += len(chunk)
                    with lock:
                        answered[key] += 1
                        if key == "exports":
                            answered["export_bytes"] += size
                except OSError:
                    with lock:
                        answered["errors"] += 1

        threads = [threading.Thread(target=loop, args=("/api/sessions", "sessions")) for _ in range(4)]
        threads += [threading.Thread(target=loop, args=("/api/export?format=ndjson", "exports"))
                    for _ in range(2)]
        for thread in threads:
            thread.start()
        cpu_start = proc_cpu_seconds(daemon.pid)
        try:
            wait_for(lambda: '"sent"' in sim.stdout(), 900, "the simulator to send everything", 0.02)
            wait_for(lambda: self.metric(daemon.port, "deltatap_deltas_stored_total") >= n, 300,
                     f"{n} deltas stored", 0.02)
            seconds = time.monotonic() - daemon.ready_at
        finally:
            done.set()
            for thread in threads:
                thread.join()
        cpu = proc_cpu_seconds(daemon.pid) - cpu_start
        stored = self.metric(daemon.port, "deltatap_deltas_stored_total")
        reconnects = self.metric(daemon.port, "deltatap_websocket_reconnects_total")
        queue_full = self.metric(daemon.port, "deltatap_stream_queue_full_total")
        self.stop(sim)
        self.stop(daemon)
        result = dict(deltas=n, stored=stored, seconds=seconds, rate=n / seconds, cpu=cpu,
                      reconnects=reconnects, queue_full=queue_full,
                      backpressure=sim.stderr().count("backpressure"), **answered)
        log(f"ingest {fmt} under load: {result['rate']:.0f}/s, {answered}")
        if not self.keep:
            shutil.rmtree(data, ignore_errors=True)
        self.results.setdefault("ingest_load", {})[fmt] = result

    def make_stores(self, templates):
        s = self.sizes
        for label, n, hot, journal in (("small", s["small"], s["small_hot"], 0),
                                       ("large", s["large"], s["large_hot"], s["journal"])):
            log(f"building a store of {n} deltas (hot session {hot}, journal {journal})")
            data = os.path.join(self.work, f"store-{label}")
            made = self.run_tool("make_store", "--templates", templates, "--deltas", n,
                                 "--hot", hot, "--journal", journal,
                                 "--out", os.path.join(data, "sessions.sqlite"))
            made["data"] = data
            log(f"querying it through the library")
            made["library"] = self.run_tool(
                "store_query", "--db", os.path.join(data, "sessions.sqlite"),
                "--sessions", made["typical_sessions"], "--iterations", s["query_iterations"],
                "--serialize", s["serialize"])
            self.results.setdefault("stores", {})[label] = made

    def start_up_and_http(self):
        store = self.results["stores"]["large"]
        log(f"start-up with {store['deltas']} deltas and a {store['journal_deltas']}-delta journal")
        sim = self.start_sim("sim-quiet", "--count", 1, "--format", "delta")
        url = f"ws://127.0.0.1:{sim.port}/ws"
        result = self.results["startup"] = {}
        try:
            daemon = self.start_daemon("deltatapd-startup", store["data"], url, log_level="info")
        except DaemonExited as exited:
            # Keep going without the journal, so the snapshot's part is still measured.
            log(f"deltatapd did not start: {exited}")
            result["failed"] = str(exited)
            for name in os.listdir(store["data"]):
                if name.startswith("sessions.journal"):
                    os.remove(os.path.join(store["data"], name))
            result["without_journal"] = True
            daemon = self.start_daemon("deltatapd-startup-2", store["data"], url, log_level="info")
        phases = self.log_times(daemon, ("Database loaded", "Journal replayed",
                                         "HTTP API listening"))
        stats = json.loads(self.http(daemon.port, "/api/stats"))
        # The replay is followed by a snapshot: a child writing 1.3 GB, with its
        # writeback and page faults, is a different scenario (snapshot while
        # streaming), so the queries wait for it to end.
        log(f"READY after {daemon.ready_seconds:.2f} s; waiting for the replay's snapshot")
        if not result.get("without_journal"):
            wait_for(lambda: self.metric(daemon.port, "deltatap_snapshot_duration_seconds_count") >= 1,
                     300, "the snapshot after the journal replay", 0.05)
            result["replay_snapshot_seconds"] = self.metric(
                daemon.port, "deltatap_snapshot_duration_seconds_sum")
        log("querying over HTTP")
        http = self.run_tool("http_latency", "--port", daemon.port,
                             "--sessions", store["typical_sessions"],
                             "--iterations", self.sizes["http_iterations"])
        _, peak = proc_memory(daemon.pid)
        self.stop(daemon)
        self.stop(sim)
        result.update(ready_seconds=daemon.ready_seconds, phases=phases,
                      deltas=stats["deltaCount"], peak_rss=peak)
        self.results["http"] = http

    def analytics_http(self, templates):
        """Issue 15: each analytics answer over 30 days of a 1,000,000-delta,
        20,000-session history, through the API, while the simulator's batches
        keep landing."""
        s = self.sizes
        n, sessions = s["large"], s["analytics_sessions"]
        data = os.path.join(self.work, "store-analytics")
        log(f"building a store of {n} deltas over 30 days in {sessions} sessions")
        made = self.run_tool("make_store", "--templates", templates, "--deltas", n,
                             "--per-session", max(1, n // sessions), "--span-days", 30,
                             "--out", os.path.join(data, "sessions.sqlite"))
        # Retention must not trim the month's oldest deltas while it is measured.
        conf = os.path.join(self.work, "analytics.conf")
        with open(conf, "w") as f:
            f.write("[retention]\ndays = 60\n")
        sim = self.start_sim("sim-analytics", "--count", 0, "--rate", s["stream_rate"],
                             "--format", "delta")
        daemon = self.start_daemon("deltatapd-analytics", data, f"ws://127.0.0.1:{sim.port}/ws",
                                   args=("--config", conf))
        before = json.loads(self.http(daemon.port, "/api/stats"))["deltaCount"]
        log("asking for the analytics over HTTP while the stream lands")
        started = time.monotonic()
        timings = self.run_tool("http_latency", "--port", daemon.port, "--analytics", 1,
                                "--iterations", s["analytics_iterations"])
        seconds = time.monotonic() - started
        after = json.loads(self.http(daemon.port, "/api/stats"))["deltaCount"]
        reconnects = self.metric(daemon.port, "deltatap_websocket_reconnects_total")
        self.stop(daemon)
        self.stop(sim)
        if not self.keep:
            shutil.rmtree(data, ignore_errors=True)
        self.results["analytics"] = dict(deltas=made["deltas"], sessions=made["sessions"],
                                         landed=after - before, seconds=seconds,
                                         reconnects=reconnects, **timings)

    def capacity(self, templates):
        """Issue 16: bytes per delta with [storage] compression off and zstd
        (the same deltas, before states chained as the backend sends them),
        the daemon's ingest CPU per delta and the store lane's alone for
        each, archive moves, and a 30-day busy room
        (10,000,000 deltas) compressed: start-up, memory, queries, snapshots."""
        s = self.sizes
        result = {}
        # The daemon's CPU per delta, every thread, taking the simulator's
        # format A stream at full speed with each mode: three pairs, the modes
        # alternating, the ratio taken pair by pair.
        ingest = {"off": [], "zstd": []}
        for attempt in range(3):
            for mode in ("off", "zstd"):
                run = self.ingest_once("delta", attempt, compression=mode)
                if run["stored"] < run["deltas"]:
                    raise RuntimeError(f"ingest with compression {mode} stored {run['stored']:.0f} "
                                       f"of {run['deltas']} deltas")
                ingest[mode].append(1e6 * run["cpu"] / run["deltas"])
                if not self.keep:
                    shutil.rmtree(os.path.dirname(run["db"]), ignore_errors=True)
        result["ingest_cpu_us"] = ingest
        result["ingest_cpu_ratios"] = [z / o for o, z in zip(ingest["off"], ingest["zstd"])]
        # The store lane's CPU per delta moves by a third from run to run on this
        # VM, more than the difference between the modes: each mode's store is
        # built three times, the modes alternating, and the ratio is taken pair
        # by pair (the median and the spread are shown).
        cpu = {"off": [], "zstd": []}
        for build in range(3):
            for mode in ("off", "zstd"):
                data = os.path.join(self.work, f"store-capacity-{mode}")
                log(f"building a store of {s['capacity']} deltas, compression {mode} ({build + 1} of 3)")
                result[mode] = self.run_tool("make_store", "--templates", templates, "--deltas", s["capacity"],
                                             "--chain", "--compression", mode,
                                             "--out", os.path.join(data, "sessions.sqlite"))
                cpu[mode].append(result[mode]["store_cpu_us_per_delta"])
        result["cpu_ratios"] = [z / o for o, z in zip(cpu["off"], cpu["zstd"])]
        result["cpu_us"] = cpu
        for mode in ("off", "zstd"):
            data = os.path.join(self.work, f"store-capacity-{mode}")
            # Every delta of the store moved into archive files ([retention] archive),
            # three times from the same file (the move empties memory, not the file):
            # the median, and the spread beside it.
            log(f"archiving it, compression {mode}, three times")
            runs = []
            for i in range(3):
                archive = os.path.join(self.work, f"archive-capacity-{mode}-{i}")
                runs.append(self.run_tool("archive_move", "--db", os.path.join(data, "sessions.sqlite"),
                                          "--dir", archive))
                if not self.keep:
                    shutil.rmtree(archive, ignore_errors=True)
            runs.sort(key=lambda run: run["deltas_per_second"])
            result[mode]["archive"] = dict(runs[1], runs=[run["deltas_per_second"] for run in runs])
            if not self.keep:
                shutil.rmtree(data, ignore_errors=True)
        n = s["capacity_large"]
        data = os.path.join(self.work, "store-capacity-large")
        log(f"building a store of {n} deltas, compression zstd")
        large = self.run_tool("make_store", "--templates", templates, "--deltas", n, "--hot", n // 100,
                              "--chain", "--compression", "zstd",
                              "--out", os.path.join(data, "sessions.sqlite"))
        log("querying it through the library")
        large["library"] = self.run_tool("store_query", "--db", os.path.join(data, "sessions.sqlite"),
                                         "--sessions", large["typical_sessions"],
                                         "--iterations", s["query_iterations"], "--serialize", 0)
        conf = os.path.join(self.work, "capacity.conf")
        with open(conf, "w") as f:
            f.write("[storage]\ncompression = zstd\n")
        sim = self.start_sim("sim-capacity", "--count", 0, "--rate", s["stream_rate"], "--format", "delta")
        daemon = self.start_daemon("deltatapd-capacity", data, f"ws://127.0.0.1:{sim.port}/ws",
                                   args=("--config", conf))
        log(f"READY after {daemon.ready_seconds:.2f} s; waiting for the reconciliation at connect")
        reconcile = self.settle_reconciliation(daemon.port)
        log(f"{reconcile['deltas']:.0f} sessions reconciled, the longest /healthz "
            f"{reconcile['probe_max_ms']:.0f} ms; snapshots while the stream lands")
        pause = self.run_tool("snapshot_pause", "--port", daemon.port, "--snapshots", s["snapshots"])
        http = self.run_tool("http_latency", "--port", daemon.port,
                             "--sessions", large["typical_sessions"],
                             "--iterations", s["http_iterations"])
        _, peak = proc_memory(daemon.pid)
        self.stop(daemon)
        self.stop(sim)
        if not self.keep:
            shutil.rmtree(data, ignore_errors=True)
        large.update(ready_seconds=daemon.ready_seconds, peak_rss=peak, pause=pause, http=http,
                     reconcile=reconcile)
        result["large"] = large
        self.results["capacity"] = result

    def settle_reconciliation(self, port):
        """The store builder's sessions are names the simulator never
        announced, so at connect the daemon infers that each one still live
        ended (design.md, Fidelity): one batch of about 99,000 inferred
        deltas, which the store lane stores in one transaction. Waits for it
        (the reconciled counter moved and the queue between the lanes is
        empty) while asking /healthz every 10 ms, so that the snapshot pause
        is measured after it and the stall it causes is a figure of its own."""
        started = time.monotonic()
        longest = 0.0
        while True:
            asked = time.monotonic()
            self.http(port, "/healthz")
            longest = max(longest, time.monotonic() - asked)
            page = self.http(port, "/metrics")
            reconciled = metric_in(page, "deltatap_reconciled_deltas_total")
            if reconciled > 0 and metric_in(page, "deltatap_stream_queue_bytes") < 1024 * 1024:
                return dict(deltas=reconciled, probe_max_ms=longest * 1000,
                            seconds=time.monotonic() - started)
            if time.monotonic() - started > 300:
                raise RuntimeError("the reconciliation at connect never finished")
            time.sleep(0.01)

    def postgres(self, templates):
        """Issue 17: replication into a local PostgreSQL beside one INSERT per
        delta on the same rows, the lag at a steady 2,000 deltas/s, and
        `deltatap export --to` of a 1,000,000-delta file."""
        s = self.sizes
        server = PgServer(self.work)
        try:
            log(f"replicating {s['pg_rows']} deltas: COPY, resend, one INSERT per delta")
            result = self.run_tool("postgres", "--from", templates, "--url", server.url,
                                   "--rows", s["pg_rows"])
            log(f"replication lag at 2,000 deltas/s for {s['pg_lag_seconds']} s")
            result["lag"] = self.run_tool("postgres_lag", "--from", templates, "--url", server.url,
                                          "--rate", 2_000, "--seconds", s["pg_lag_seconds"])
            n = s["pg_export"]
            data = os.path.join(self.work, "store-export")
            log(f"building a store of {n} deltas for export --to")
            self.run_tool("make_store", "--templates", templates, "--deltas", n,
                          "--out", os.path.join(data, "sessions.sqlite"))
            log("deltatap export --to")
            started = time.monotonic()
            subprocess.run([os.path.join(self.build, "deltatap"), "export", "--db",
                            os.path.join(data, "sessions.sqlite"), "--to", server.url,
                            "--source", "bench-export"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            seconds = time.monotonic() - started
            result["export"] = dict(deltas=n, seconds=seconds, rows_per_s=n / seconds)
            if not self.keep:
                shutil.rmtree(data, ignore_errors=True)
        finally:
            server.stop()
        self.results["postgres"] = result

    def snapshot_while_streaming(self, label):
        store = self.results["stores"][label]
        rate = self.sizes["stream_rate"]
        log(f"snapshots of the {label} store while streaming {rate} deltas/s")
        sim = self.start_sim(f"sim-stream-{label}", "--rate", rate, "--format", "session_update")
        daemon = self.start_daemon(f"deltatapd-snapshot-{label}", store["data"],
                                   f"ws://127.0.0.1:{sim.port}/ws")
        wait_for(lambda: self.metric(daemon.port, "deltatap_websocket_connected") == 1, 30,
                 "the daemon to connect")
        faults_before = proc_major_faults(daemon.pid)
        pause = self.run_tool("snapshot_pause", "--port", daemon.port,
                              "--snapshots", self.sizes["snapshots"])
        major_faults = proc_major_faults(daemon.pid) - faults_before
        stats = json.loads(self.http(daemon.port, "/api/stats"))
        forks = self.metric(daemon.port, "deltatap_snapshot_pause_seconds_count")
        fork_mean_us = 1e6 * self.metric(daemon.port, "deltatap_snapshot_pause_seconds_sum") / max(forks, 1)
        # Both counters from one scrape, after the stream has stopped.
        self.stop(sim)
        wait_for(lambda: self.metric(daemon.port, "deltatap_websocket_connected") == 0, 30,
                 "the daemon to see the simulator go")
        # The last frames can still be in the parse thread or in the 5 ms batch
        # window when the disconnect is seen: give them a moment, then take
        # whatever the counters say (a difference left is a loss, and shows).
        def settled():
            page = self.http(daemon.port, "/metrics")
            counts = (metric_in(page, "deltatap_deltas_received_total"),
                      metric_in(page, "deltatap_deltas_stored_total"))
            return counts if counts[0] == counts[1] else None
        try:
            received, stored = wait_for(settled, 10, "every received delta to be stored")
        except RuntimeError:
            page = self.http(daemon.port, "/metrics")
            received = metric_in(page, "deltatap_deltas_received_total")
            stored = metric_in(page, "deltatap_deltas_stored_total")
        rss, peak = proc_memory(daemon.pid)
        self.stop(daemon)
        self.results.setdefault("snapshot", {})[label] = dict(
            pause, deltas=stats["deltaCount"], memory_bytes=stats["memoryBytes"], peak_rss=peak,
            fork_mean_us=fork_mean_us, forks=forks, major_faults=major_faults,
            rss=rss, received=received, stored=stored)

    def idle(self):
        seconds = self.sizes["idle_seconds"]
        log(f"idle: {seconds} s connected, no traffic")
        sim = self.start_sim("sim-idle", "--count", 1, "--format", "delta")
        daemon = self.start_daemon("deltatapd-idle", os.path.join(self.work, "idle"),
                                   f"ws://127.0.0.1:{sim.port}/ws")
        wait_for(lambda: self.metric(daemon.port, "deltatap_deltas_stored_total") >= 1, 30,
                 "the one delta")
        cpu_start = proc_cpu_seconds(daemon.pid)
        sim_cpu_start = proc_cpu_seconds(sim.pid)
        wakeups_start = sum(proc_wakeups(int(t)) for t in os.listdir(f"/proc/{daemon.pid}/task"))
        time.sleep(seconds)  # the measurement window itself
        wakeups = sum(proc_wakeups(int(t)) for t in os.listdir(f"/proc/{daemon.pid}/task")) - wakeups_start
        cpu = proc_cpu_seconds(daemon.pid) - cpu_start
        sim_cpu = proc_cpu_seconds(sim.pid) - sim_cpu_start
        rss, peak = proc_memory(daemon.pid)
        self.stop(daemon)
        self.stop(sim)
        self.results["idle"] = dict(seconds=seconds, cpu=cpu, sim_cpu=sim_cpu, rss=rss,
                                    wakeups_per_s=wakeups / seconds,
                                    peak_rss=peak, ready_seconds=daemon.ready_seconds)

    def idle_down(self):
        """The backend down for good: the daemon retries by the backoff the durability test
        uses (50 ms doubling to 300 ms) and otherwise sleeps. That test checks the spacing
        of the attempts; what they cost is measured here."""
        seconds = self.sizes["idle_seconds"]
        log(f"idle, backend down: {seconds} s")
        conf = os.path.join(self.work, "down.conf")
        with open(conf, "w") as f:
            f.write("[stream]\nbackoff_initial = 50ms\nbackoff_max = 300ms\n")
        daemon = self.start_daemon("deltatapd-down", os.path.join(self.work, "down"),
                                   f"ws://127.0.0.1:{free_port()}/ws", args=("--config", conf))
        attempts_start = self.metric(daemon.port, "deltatap_websocket_reconnects_total")
        cpu_start = proc_cpu_seconds(daemon.pid)
        time.sleep(seconds)  # the measurement window itself
        cpu = proc_cpu_seconds(daemon.pid) - cpu_start
        attempts = self.metric(daemon.port, "deltatap_websocket_reconnects_total") - attempts_start
        self.stop(daemon)
        self.results["idle_down"] = dict(seconds=seconds, cpu=cpu, attempts=attempts)

    def ingest_templates(self):
        """A database of simulator deltas (format B ingest) whose states the
        store builders reuse."""
        self.ingest("session_update")
        return self.results["ingest"]["session_update"]["db"]

    def run(self, only=None):
        self.results["load_before"] = load_average()
        if only == "analytics":
            self.ingest("session_update")
            self.analytics_http(self.results["ingest"]["session_update"]["db"])
            self.results["load_after"] = load_average()
            return
        if only == "capacity":
            self.capacity(self.templates or self.ingest_templates())
            self.results["load_after"] = load_average()
            return
        if only == "postgres":
            self.postgres(self.templates or self.ingest_templates())
            self.results["load_after"] = load_average()
            return
        if only == "ingest":
            # Format A with and without the query load, nothing else.
            self.ingest("delta")
            self.ingest_under_load("delta")
            self.results["load_after"] = load_average()
            return
        for fmt in ("delta", "session_update", "mixed"):
            self.ingest(fmt)
        self.ingest_under_load("delta")
        templates = self.results["ingest"]["session_update"]["db"]
        self.make_stores(templates)
        self.analytics_http(templates)
        self.postgres(templates)
        self.capacity(templates)
        if not self.keep:
            shutil.rmtree(os.path.dirname(templates), ignore_errors=True)
        self.start_up_and_http()
        for label in ("small", "large"):
            self.snapshot_while_streaming(label)
        self.idle()
        self.idle_down()
        self.results["load_after"] = load_average()


# --- the table ---------------------------------------------------------------------

def ms(us):
    return f"{us / 1000:.2f} ms"


def mb(n):
    return f"{n / MB:.0f} MB"


def verdict(ok):
    return "met" if ok else "**not met**"


def table(r, sizes, quick):
    rows = []

    def row(scenario, figure, measured, reference, target, met=""):
        rows.append((scenario, figure, measured, reference, target, met))

    for fmt, i in r.get("ingest", {}).items():
        raw = i["raw"]["rows_per_s"]
        tuned = i["raw_tuned"]["rows_per_s"]
        ok = i["rate"] >= 0.9 * raw and i["stored"] == i["deltas"] and i["in_file"] == i["deltas"]
        keeps_up = i["reconnects"] == 0 and i["backpressure"] == 0
        others = ", ".join(f"{r:,.0f}" for r in i["rates"])
        row(f"ingest {fmt}, {i['deltas']:,}", "deltas/s stored (best of runs)",
            f"{i['rate']:,.0f} ({i['rate'] / raw:.2f} × raw; runs {others})",
            f"raw {raw:,.0f}/s; tuned raw {tuned:,.0f}/s (best of {len(i['rates'])})", "≥ 0.9 × raw",
            verdict(ok))
        row("", "CPU s (daemon; sim)", f"{i['cpu']:.2f}; {i['sim_cpu']:.2f}",
            f"raw insert {i['raw']['seconds']:.2f} s", "", "")
        row("", "peak RSS", mb(i["peak_rss"]), f"raw db {mb(i['raw']['memory_bytes'])}", "", "")
        row("", "read loop keeps up", f"{i['reconnects']:.0f} reconnects, "
            f"{i['backpressure']} backpressure closes", "", "0", verdict(keeps_up))

    for fmt, i in r.get("ingest_load", {}).items():
        base = r["ingest"][fmt]["rate"]
        keeps_up = i["reconnects"] == 0 and i["backpressure"] == 0 and i["stored"] == i["deltas"]
        row(f"ingest {fmt} under query load, {i['deltas']:,}", "deltas/s stored",
            f"{i['rate']:,.0f} ({i['rate'] / base:.2f} × no load); {i['sessions']:,} /api/sessions "
            f"and {i['exports']} exports ({mb(i['export_bytes'])}) answered meanwhile",
            f"no load {base:,.0f}/s (same build, best of runs)", "", "")
        row("", "tap keeps up", f"{i['reconnects']:.0f} reconnects, {i['backpressure']} backpressure "
            f"closes, queue full {i['queue_full']:.0f}×", "", "0", verdict(keeps_up))

    a = r.get("analytics")
    if a:
        for kind in ("durations", "approvals", "heatmap"):
            row(f"analytics at {a['deltas']:,} / {a['sessions']:,} sessions, 30 d, HTTP" if kind == "durations" else "",
                f"{kind} p50/p95/p99",
                f"{ms(a[kind + '_p50_us'])} / {ms(a[kind + '_p95_us'])} / {ms(a[kind + '_p99_us'])}",
                f"{a['landed']:,} deltas stored meanwhile ({a['landed'] / a['seconds']:,.0f}/s), "
                f"{a['reconnects']:.0f} reconnects" if kind == "durations" else "",
                "p99 ≤ 50 ms", verdict(a[kind + "_p99_us"] <= 50_000))

    cap = r.get("capacity")
    if cap:
        off, on = cap["off"], cap["zstd"]
        per_off, per_on = off["file_bytes"] / off["deltas"], on["file_bytes"] / on["deltas"]
        row(f"compression at {on['deltas']:,} (issue 16)", "file bytes per delta, zstd",
            f"{per_on:,.0f} (1/{per_off / per_on:.1f} of off)", f"compression off {per_off:,.0f}",
            "≤ 1/5 of off", verdict(per_on * 5 <= per_off))
        # Compression's CPU, two ways: the daemon's whole ingest (the issue's
        # figure) and the store lane alone (the stricter one).
        for figure, key in (("ingest CPU per delta (daemon, every thread, format A at full speed)",
                             "ingest_cpu"),
                            ("store lane alone (store builder, no parsing), CPU per delta", "cpu")):
            pairs, us = cap[key + "_ratios"], cap[key + "_us"]
            ratio = sorted(pairs)[len(pairs) // 2]
            row("", f"{figure}, zstd / off, median of three pairs",
                f"× {ratio:.2f} (pairs {', '.join(f'× {r:.2f}' for r in pairs)})",
                f"zstd {', '.join(f'{v:.1f}' for v in us['zstd'])} µs; "
                f"off {', '.join(f'{v:.1f}' for v in us['off'])} µs (same run)",
                "≤ × 1.3", verdict(ratio <= 1.3))
        for mode in ("zstd", "off"):
            am = cap[mode]["archive"]
            spread = ", ".join(f"{rate:,.0f}" for rate in am["runs"])
            row("", f"archive move, compression {mode}: deltas/s out of memory into archive files, "
                f"median of three",
                f"{am['deltas_per_second']:,.0f} ({am['seconds']:.2f} s; runs {spread})",
                f"{am['bytes_per_delta']:.0f} bytes per delta in the files", "≥ 100,000/s",
                verdict(am["deltas_per_second"] >= 100_000))
        big = cap["large"]
        lib = big["library"]
        row(f"{big['deltas']:,} deltas, zstd", "peak RSS; file",
            f"{mb(big['peak_rss'])}; {mb(big['file_bytes'])}", "", "RSS ≤ 3 GB",
            verdict(big["peak_rss"] <= 3 * 1024 * MB))
        row("", "start to READY=1", f"{big['ready_seconds']:.2f} s",
            f"Store::load {lib['load_seconds']:.2f} s", "≤ 5 s", verdict(big["ready_seconds"] <= 5))
        row("", "per-session query p99 (library; HTTP)",
            f"{ms(lib['typical_p99_us'])}; {ms(big['http']['typical_p99_us'])}", "", "≤ 1 ms (library)",
            verdict(lib["typical_p99_us"] <= 1000))
        rec = big.get("reconcile")
        if rec:
            row("", f"reconciliation at connect ({rec['deltas']:,.0f} sessions inferred ended, one batch)",
                f"longest /healthz {rec['probe_max_ms']:.0f} ms", "", "", "")
        row("", "snapshot pause (probe during)", ms(big["pause"]["probe_during_max_us"]),
            f"probe before {ms(big['pause']['probe_baseline_max_us'])}", "≤ 150 ms",
            verdict(big["pause"]["probe_during_max_us"] <= 150_000))

    pg = r.get("postgres")
    if pg:
        runs = pg.get("copy_runs", "")
        row(f"PostgreSQL replication, {pg['rows']:,} deltas (issue 17)",
            "deltas/s: COPY (new rows), two connections, median of runs",
            f"{pg['copy_rows_per_s']:,.0f} ({pg['copy_rows_per_s'] / pg['naive_rows_per_s']:.1f} × naive; "
            f"runs {runs})",
            f"one connection {pg['copy_one_rows_per_s']:,.0f}/s; one INSERT per delta "
            f"{pg['naive_rows_per_s']:,.0f}/s; all resent (ON CONFLICT) {pg['resend_rows_per_s']:,.0f}/s",
            "≥ 50,000/s", verdict(pg["copy_rows_per_s"] >= 50_000))
        lag = pg["lag"]
        row("", f"lag at {lag['rate']:,.0f} deltas/s, {lag['deltas']:,} deltas",
            f"p50 {ms(lag['lag_p50_us'])}, p99 {ms(lag['lag_p99_us'])}, max {ms(lag['lag_max_us'])}",
            f"{lag['errors']} sink errors", "p99 ≤ 1 s", verdict(lag["lag_p99_us"] <= 1_000_000))
        ex = pg["export"]
        row("", f"`export --to`, {ex['deltas']:,} deltas",
            f"{ex['rows_per_s']:,.0f}/s ({ex['seconds']:.1f} s)", "", "≥ 50,000/s",
            verdict(ex["rows_per_s"] >= 50_000))

    if "stores" not in r:
        return finish_table(rows, r, quick)

    b = r["ingest"]["session_update"]["budget"]
    raw_us = 1e6 / r["ingest"]["session_update"]["raw"]["rows_per_s"]
    total = b["parse_b_us"] + b["save_batch_us"] + b["journal_append_us"]
    row(f"ingest budget, {b['rows']:,} rows", "µs per delta: parse A / B, journal (stream lane); store (store lane)",
        f"{b['parse_a_us']:.1f} / {b['parse_b_us']:.1f}, {b['journal_append_us']:.1f}; "
        f"{b['save_batch_us']:.1f} (B total {total:.1f} → {1e6 / total:,.0f}/s)",
        f"raw insert {raw_us:.1f} µs", "", "")
    # Issue 14: what the session ledger costs, both figures from the same rows in the same run.
    row("ledger cost (issue 14)", "µs per delta on the store lane: with the ledger's rules and ledger / without",
        f"{b['record_with_ledger_us']:.1f} / {b['store_without_ledger_us']:.1f}; "
        f"ingest CPU × {b['ledger_cost_ratio']:.2f}",
        "without the ledger (same run)", "≤ × 1.15", verdict(b["ledger_cost_ratio"] <= 1.15))

    large = r["stores"]["large"]
    lib = large["library"]
    for kind, label in (("typical", "typical session"), ("hot", f"hot session ({large['hot_deltas']:,})"),
                        ("global", "global newest 100")):
        row(f"query at {large['deltas']:,}, library", f"{label} p50/p95/p99",
            f"{ms(lib[kind + '_p50_us'])} / {ms(lib[kind + '_p95_us'])} / {ms(lib[kind + '_p99_us'])}",
            "", "p99 ≤ 1 ms", verdict(lib[kind + "_p99_us"] <= 1000))
    http = r["http"]
    for kind, label in (("typical", "typical session"), ("hot", "hot session"),
                        ("global", "global newest 100")):
        row(f"query at {r['startup']['deltas']:,}, HTTP", f"{label} p50/p95/p99",
            f"{ms(http[kind + '_p50_us'])} / {ms(http[kind + '_p95_us'])} / {ms(http[kind + '_p99_us'])}",
            f"library p99 {ms(lib[kind + '_p99_us'])}"
            + (f"; after the replay's {r['startup']['replay_snapshot_seconds']:.1f} s snapshot"
               if "replay_snapshot_seconds" in r["startup"] else ""), "p99 ≤ 2 ms",
            verdict(http[kind + "_p99_us"] <= 2000))

    for label, limit_ms in (("small", 15), ("large", 150)):
        s = r["snapshot"][label]
        store_lib = r["stores"][label]["library"]
        row(f"snapshot at {s['deltas']:,}, streaming {sizes['stream_rate']}/s", "snapshot duration (max)",
            ms(s["snapshot_max_us"]), f"{mb(s['bytes'])} file; stored {s['stored']:,.0f} of "
            f"{s['received']:,.0f} received", "", "")
        row("", "longest pause (probe during)", ms(s["probe_during_max_us"]),
            f"fork() mean {ms(s['fork_mean_us'])} ({s['forks']:.0f}); old design's serialize() p50 "
            f"{ms(store_lib['serialize_p50_us'])}; probe before {ms(s['probe_baseline_max_us'])}; "
            f"daemon's major faults during {s['major_faults']}",
            f"≤ {limit_ms} ms", verdict(s["probe_during_max_us"] <= limit_ms * 1000))

    row(f"stats at {large['deltas']:,}, library", "Store::counts() p50 / max",
        f"{ms(lib['counts_p50_us'])} / {ms(lib['counts_max_us'])}",
        f"per GET /api/stats; what a /metrics scrape reads: p50 {lib['scrape_p50_us']:.0f} µs, "
        f"max {lib['scrape_max_us']:.0f} µs", "", "")

    st = r["startup"]
    if "failed" in st:
        row(f"start-up, {large['deltas']:,} + {large['journal_deltas']:,} journal", "time to READY=1",
            "**never**: " + st["failed"], "", "≤ 3 s", verdict(False))
    row(f"start-up, {large['deltas']:,}" + (" (journal removed)" if "failed" in st else
                                            f" + {large['journal_deltas']:,} journal"), "time to READY=1",
        f"{st['ready_seconds']:.2f} s",
        f"Store::load {lib['load_seconds']:.2f} s; empty {r['idle']['ready_seconds']:.2f} s; "
        + ", ".join(f"{k} at {v:.2f} s" for k, v in st["phases"].items()), "≤ 3 s",
        verdict(st["ready_seconds"] <= 3))

    for label in ("small", "large"):
        s = r["snapshot"][label]
        limit = 1.3 * s["memory_bytes"] + 30 * MB
        row(f"memory at {s['deltas']:,}", "peak RSS ÷ database bytes",
            f"{s['peak_rss'] / s['memory_bytes']:.2f} ({mb(s['peak_rss'])} ÷ {mb(s['memory_bytes'])})",
            f"RSS after the snapshots {mb(s['rss'])}",
            "≤ 1.3 × db + 30 MB", verdict(s["peak_rss"] <= limit))

    idle = r["idle"]
    # "~0 CPU" read as under 0.25 % of one core.
    row(f"idle, {idle['seconds']} s connected", "CPU s; RSS; wake-ups",
        f"{idle['cpu']:.2f} s ({100 * idle['cpu'] / idle['seconds']:.2f} %); {mb(idle['rss'])}; "
        f"{idle['wakeups_per_s']:.0f}/s",
        f"sim {idle['sim_cpu']:.2f} s", "~0 (< 0.25 %); < 15 MB",
        verdict(idle["cpu"] <= 0.0025 * idle["seconds"] and idle["rss"] < 15 * MB))

    down = r.get("idle_down")
    if down:
        # A reconnect loop that spins would take a core; a few attempts a second, next to nothing.
        row(f"idle, backend down, {down['seconds']} s", "CPU s; reconnect attempts",
            f"{down['cpu']:.2f} s ({100 * down['cpu'] / down['seconds']:.2f} %); {down['attempts']:.0f}",
            "backoff 50 ms doubling to 300 ms", "< 1 %", verdict(down["cpu"] <= 0.01 * down["seconds"]))

    return finish_table(rows, r, quick)


def finish_table(rows, r, quick):
    lines = ["| scenario | figure | measured | reference (same run) | target | |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    head = (f"{'--quick: smaller sizes than the issue' if quick else 'full run'}; "
            f"load average {' '.join(r['load_before'])} before, {' '.join(r['load_after'])} after; "
            f"{os.cpu_count()} cores")
    return head + "\n\n" + "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", required=True, help="the Release build directory")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter idle")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", help="also write every raw figure here")
    parser.add_argument("--markdown", help="also write the table here")
    parser.add_argument("--only", choices=["ingest", "analytics", "postgres", "capacity"],
                        help="ingest: only format A ingest, with and without the query load; "
                             "analytics: only the analytics answers at 1,000,000 deltas; "
                             "postgres: only replication, its lag and export --to; "
                             "capacity: only compression's sizes and the 10,000,000-delta store")
    parser.add_argument("--templates", help="with --only postgres|capacity: a database of simulator "
                                            "deltas to take states from, instead of an ingest run")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    work = tempfile.mkdtemp(prefix="deltatap-bench.")
    bench = Bench(os.path.abspath(args.build), work, sizes, args.keep)
    bench.templates = os.path.abspath(args.templates) if args.templates else None
    try:
        bench.run(args.only)
    finally:
        bench.stop_all()
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    # The raw figures first: a table that cannot be drawn loses nothing.
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(sizes=sizes, quick=args.quick, results=bench.results), f, indent=1)
    text = table(bench.results, sizes, args.quick)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
