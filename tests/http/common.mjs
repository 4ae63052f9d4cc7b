// Shared by the HTTP front end's Node tests: a `hydra serve` process on
// free ports (gRPC, metrics, HTTP), waited on through GET /health, stopped
// with SIGTERM (which must exit 0); metric scraping; skip/fail helpers.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export const SKIP = 77;

// Servers still running; a failing test kills them on its way out, or they
// would outlive it.
const running = new Set();

export function fail(message) {
  console.error("FAIL: " + message);
  for (const proc of running) proc.kill("SIGKILL");
  process.exit(1);
}

export function check(condition, message) {
  if (!condition) fail(message);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export class HydraServer {
  constructor(hydra, modelDir, workDir, flags = []) {
    this.hydra = hydra;
    this.modelDir = modelDir;
    this.workDir = workDir;
    this.flags = flags;
  }

  async start() {
    this.port = await freePort();
    this.metricsPort = await freePort();
    this.httpPort = await freePort();
    fs.mkdirSync(this.workDir, { recursive: true });
    this.logPath = path.join(this.workDir, "serve.log");
    const log = fs.openSync(this.logPath, "w");
    this.proc = spawn(
      this.hydra,
      [
        "serve",
        `--model=${this.modelDir}`,
        "--host=127.0.0.1",
        `--port=${this.port}`,
        `--metrics_port=${this.metricsPort}`,
        `--http_port=${this.httpPort}`,
        "--kv_cache_bytes=67108864",
        "--drain_seconds=5",
        ...this.flags,
      ],
      { stdio: ["ignore", log, log] },
    );
    this.exited = null;
    running.add(this.proc);
    this.proc.on("exit", (code, signal) => {
      this.exited = { code, signal };
      running.delete(this.proc);
    });
    this.base = `http://127.0.0.1:${this.httpPort}`;
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      check(this.exited === null, "hydra serve exited early:\n" + this.output());
      try {
        const r = await fetch(this.base + "/health");
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    fail("hydra serve not healthy within 60 s:\n" + this.output());
  }

  output() {
    return fs.existsSync(this.logPath) ? fs.readFileSync(this.logPath, "utf8") : "";
  }

  async metric(name, labels = "") {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
    for (const line of text.split("\n")) {
      if (line.startsWith(name + (labels ? "{" : "")) && (!labels || line.includes(labels))) {
        const [series, value] = line.split(" ");
        if (series === name || labels) return Number(value);
      }
    }
    return NaN;
  }

  // Waits until the engine holds no KV blocks (the stats update every
  // 200 ms).
  async waitNoBlocksUsed(what, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    let used = NaN;
    while (Date.now() < deadline) {
      used = await this.metric("hydra_kv_cache_blocks", 'state="used"');
      const running = await this.metric("hydra_requests_running");
      if (used === 0 && running === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    fail(`${what}: ${used} KV blocks still used after ${timeoutMs} ms`);
  }

  async stop() {
    if (this.exited === null) {
      const done = new Promise((r) => this.proc.on("exit", r));
      this.proc.kill("SIGTERM");
      await done;
    }
    check(
      this.exited.code === 0,
      `hydra serve exited ${JSON.stringify(this.exited)} on SIGTERM:\n` + this.output(),
    );
  }
}

// argv: hydra binary, model folder, test data folder, work folder.
export function parseArgs() {
  const [hydra, modelDir, dataDir, workDir] = process.argv.slice(2);
  if (!hydra || !modelDir || !dataDir || !workDir) {
    fail("usage: node TEST.mjs HYDRA MODEL_DIR DATA_DIR WORK_DIR");
  }
  if (!fs.existsSync(path.join(modelDir, "model.safetensors"))) {
    console.log(`SKIP: no model at ${modelDir} (scripts/setup.sh fetches it)`);
    process.exit(SKIP);
  }
  return { hydra, modelDir, dataDir, workDir };
}
