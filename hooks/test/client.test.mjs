/**
 * The delivery library's parts that need no server: the backoff, Retry-After, and the spool's files
 * (offsets after a crash, torn lines, claims between processes). Run by `node --test` from
 * tests/test_hook_client.py; the behaviour against a real dashboard is tested there.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { backoffDelay, configFromEnv, newEventId, retryAfterMs, Spool } from "../dashboard-client.mjs";

const config = { retryBaseMs: 500, retryMaxMs: 30_000 };
const events = (from, to) => Array.from({ length: to - from }, (_, n) => ({ id: `e${from + n}`, type: "x", data: {} }));
const ids = (batch) => batch.events.map((event) => event.id);

function deadPid() {
  return spawnSync(process.execPath, ["-e", ""]).pid; // it has exited by the time spawnSync returns
}

test("the backoff grows to its ceiling with full jitter, and Retry-After is a floor", () => {
  assert.equal(backoffDelay(0, config, 0, () => 0.999), 499);
  assert.equal(backoffDelay(3, config, 0, () => 0.999), 3_996);
  assert.equal(backoffDelay(20, config, 0, () => 0.999), 29_970);
  assert.equal(backoffDelay(5, config, 0, () => 0), 0);
  assert.equal(backoffDelay(0, config, 7_000, () => 0.5), 7_000);
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  const now = Date.parse("2026-11-25T10:00:00Z");
  assert.equal(retryAfterMs("3", now), 3_000);
  assert.equal(retryAfterMs("Wed, 25 Nov 2026 10:01:00 GMT", now), 60_000);
  assert.equal(retryAfterMs("soon", now), 0);
  assert.equal(retryAfterMs(null, now), 0);
});

test("configuration comes from the environment, with the spool under XDG_STATE_HOME", () => {
  const settings = configFromEnv({ DASHBOARD_URL: "http://dash:3000", DASHBOARD_BATCH_MAX: "5000",
    XDG_STATE_HOME: "/state", DASHBOARD_RETRY_BASE_MS: "nonsense" });
  assert.equal(settings.url, "http://dash:3000");
  assert.equal(settings.batchMax, 1000); // the ingest contract's limit
  assert.equal(settings.spoolDir, "/state/opencode-dashboard/spool");
  assert.equal(settings.retryBaseMs, 500);
  assert.equal(settings.batchMaxBytes, 1024 * 1024);
  assert.equal(configFromEnv({ DASHBOARD_BATCH_MAX_BYTES: "65536" }).batchMaxBytes, 65_536);
  assert.equal(configFromEnv({ DASHBOARD_BATCH_MAX_BYTES: "10" }).batchMaxBytes, 1024); // at least 1 KiB
});

test("a spool read in batches resumes after its last recorded offset in the next process", () => {
  const dir = mkdtempSync(join(tmpdir(), "spool-"));
  const pid = deadPid();
  const first = new Spool(dir, { pid });
  first.append(events(0, 5));
  first.consume(first.head(2)); // delivered e0, e1; then the process "dies" before sending more
  assert.deepEqual(ids(first.head(2)), ["e2", "e3"]);
  first.release(); // what a process that is gone holds: nothing

  const next = new Spool(dir, { pid: process.pid });
  assert.equal(next.adoptOrphans(), 1);
  assert.deepEqual(ids(next.head(10)), ["e2", "e3", "e4"]);
  next.consume(next.head(10));
  assert.equal(next.pending(), false);
  assert.deepEqual(readdirSync(dir), [], "a delivered segment leaves no files behind");
});

test("a torn last line and an unreadable line are skipped, the rest delivered", () => {
  const dir = mkdtempSync(join(tmpdir(), "spool-"));
  const segment = join(dir, `${String(Date.now()).padStart(13, "0")}-${deadPid()}-000000.jsonl`);
  writeFileSync(segment, '{"id": "a"}\nnot json\n{"id": "b"}\n');
  appendFileSync(segment, '{"id": "c", "da'); // the writer died mid-line
  const spool = new Spool(dir, { log: () => {} });
  spool.adoptOrphans();

  const batch = spool.head(10);
  assert.deepEqual(ids(batch), ["a", "b"]);
  spool.consume(batch);
  assert.equal(spool.head(10), null);
  assert.equal(spool.pending(), false);
});

test("a live process's segments are not adopted, and one orphan goes to one adopter only", () => {
  const dir = mkdtempSync(join(tmpdir(), "spool-"));
  const live = new Spool(dir, { pid: process.ppid }); // the test runner: alive
  live.append(events(0, 1));
  const orphan = new Spool(dir, { pid: deadPid() });
  orphan.append(events(1, 2));
  live.release(); // as if they were other processes: only the pids tell them apart
  orphan.release();

  const one = new Spool(dir, { pid: process.pid });
  const other = new Spool(dir, { pid: 1 }); // a second live adopter (init: alive too)
  assert.equal(one.adoptOrphans(), 1);
  assert.equal(other.adoptOrphans(), 0);
  assert.deepEqual(ids(one.head(10)), ["e1"]);
});

test("over its limit the spool drops whole segments, oldest first", () => {
  const dir = mkdtempSync(join(tmpdir(), "spool-"));
  const spool = new Spool(dir, { maxBytes: 16_384, log: () => {} });
  const big = (n) => ({ id: `e${n}`, type: "x", data: { pad: "p".repeat(500) } });
  for (let n = 0; n < 100; n++) spool.append([big(n)]);

  const kept = [];
  for (let batch = spool.head(10); batch; batch = spool.head(10)) {
    kept.push(...ids(batch));
    spool.consume(batch);
  }
  assert.ok(kept.length < 100 && kept.length >= 16_384 / 600 - 8, `kept ${kept.length}`);
  assert.equal(spool.dropped, 100 - kept.length);
  assert.deepEqual(kept, Array.from({ length: kept.length }, (_, n) => `e${100 - kept.length + n}`));
});

test("the plugin file exports its plugin function and nothing else (opencode calls every export)", async () => {
  const plugin = await import("../dashboard-hook.js");
  assert.deepEqual(Object.keys(plugin), ["DashboardHook"]);
  assert.equal(typeof plugin.DashboardHook, "function");
});

test("event ids are evt_ and 128 bits in hex, never the same twice", () => {
  const made = Array.from({ length: 10_000 }, () => newEventId());
  assert.ok(made.every((id) => /^evt_[0-9a-f]{32}$/.test(id)), made[0]);
  assert.equal(new Set(made).size, made.length);
});

test("an event id begins with the millisecond it was made, so later ids sort after earlier ones", () => {
  const before = Date.now();
  const id = newEventId();
  const after = Date.now();
  const made = parseInt(id.slice("evt_".length, "evt_".length + 12), 16);
  assert.ok(before <= made && made <= after, `${id}: ${made} not within ${before}..${after}`);
  // Within one millisecond the order is random; across milliseconds it is the time's, as text.
  const ids = [1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000, 2 ** 48 - 1].map((ms) => newEventId(ms));
  assert.deepEqual([...ids].sort(), ids);
  assert.ok(ids.every((each) => /^evt_[0-9a-f]{32}$/.test(each)), ids.join(" "));
  assert.equal(newEventId(0).slice(0, 16), "evt_000000000000");
});
