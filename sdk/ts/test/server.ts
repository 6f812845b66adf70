// A `tandem serve` subprocess on a loopback port, restartable on the same
// address and data directory.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = process.env.TANDEM_BIN ?? "";
if (!bin) throw new Error("TANDEM_BIN is not set: run the tests with `npm test`");

const dirs: string[] = [];
process.on("exit", () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "tandem-ts-"));
  dirs.push(d);
  return d;
}

/** Runs the tandem binary (e.g. `tandem token …`) and returns its stdout. */
export function tandem(...args: string[]): string {
  return execFileSync(bin, args, { encoding: "utf8" }).trim();
}

export class Server {
  url = "";
  addr = "127.0.0.1:0";
  dataDir: string;
  private readonly extra: string[];
  private proc?: ChildProcess;
  private exited?: Promise<void>;
  private logs: string[] = [];

  private constructor(dataDir: string, extra: string[]) {
    this.dataDir = dataDir;
    this.extra = extra;
  }

  static async start(extra: string[] = [], dataDir = tempDir()): Promise<Server> {
    const s = new Server(dataDir, extra);
    await s.spawn();
    return s;
  }

  private spawn(): Promise<void> {
    const args = ["serve", "--addr", this.addr, "--data-dir", this.dataDir, "--strict", "--rate-limit", "0", ...this.extra];
    const proc = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = proc;
    const log = { text: "" };
    this.logs.push("");
    const idx = this.logs.length - 1;
    this.exited = new Promise((r) => proc.on("exit", () => r()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("tandem serve did not start:\n" + log.text)), 30_000);
      proc.stderr!.setEncoding("utf8");
      proc.stderr!.on("data", (chunk: string) => {
        log.text += chunk;
        this.logs[idx] = log.text;
        const m = /msg="tandem listening" addr=(\S+)/.exec(log.text);
        if (m && !this.url.endsWith(m[1]!)) {
          clearTimeout(timer);
          this.addr = m[1]!;
          this.url = "http://" + this.addr;
          resolve();
        }
      });
      proc.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`tandem serve exited (${code}):\n${log.text}`));
      });
    });
  }

  /** Stops the process (SIGKILL: abrupt; SIGTERM: graceful, close 1001) and waits for it. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    await this.exited;
  }

  /** Starts again on the same address, on dataDir (default: the same). */
  async restart(dataDir?: string): Promise<void> {
    if (dataDir) this.dataDir = dataDir;
    this.url = "";
    await this.spawn();
  }

  /** Lines where the --strict server caught a response or frame violating its specs. */
  violations(): string[] {
    return this.logs.join("\n").split("\n").filter((l) => l.includes("violates spec"));
  }
}
