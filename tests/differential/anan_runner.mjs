// Reference PVM runner: @fluffylabs/anan-as (GP 0.7.2, AssemblyScript/WASM) behind a
// line protocol, so one node process serves a whole test session or benchmark.
//
// usage: node anan_runner.mjs <dir containing node_modules/@fluffylabs/anan-as>
// stdin, one JSON object per line:
//   {"op": "run", "program": "<hex generic blob>", "regs": ["<u64>", x13], "pc": n,
//    "gas": "<i64>", "pages": [[address, length, writable]], "memory": [[address, "<hex>"]]}
//   {"op": "bench", ...same fields..., "repeat": n}   (times prepare+run inside node)
// stdout, one JSON object per line, prefixed with "@@":
//   run:   {"status": "halt|panic|page-fault|host|out-of-gas", "pc": n, "gas": "<i64>",
//           "regs": ["<u64>"...], "memory": [[address, "<hex>"]], "exit": n}
//   bench: {"ns": <total nanoseconds>, "repeat": n, "gas": "<gas left after one run>"}
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const dir = process.argv[2];
const mod = await import(
  pathToFileURL(join(dir, "node_modules/@fluffylabs/anan-as/dist/build/release.js")).href
);
const { prepareProgram, runProgram, InputKind, HasMetadata } = mod;

const STATUS = { 0: "halt", 1: "panic", 2: "page-fault", 3: "host", 4: "out-of-gas" };

function hexToBytes(hex) {
  const out = new Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function bytesToHex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

function prepare(req) {
  const program = hexToBytes(req.program);
  const regs = req.regs.map((x) => BigInt(x));
  const pages = req.pages.map(([address, length, writable]) => ({
    address,
    length,
    access: writable ? 2 : 1,
  }));
  const chunks = req.memory.map(([address, hex]) => ({ address, data: hexToBytes(hex) }));
  return prepareProgram(InputKind.Generic, HasMetadata.No, program, regs, pages, chunks, [], 16);
}

function runOnce(req, dumpMemory) {
  const exe = prepare(req);
  return runProgram(exe, BigInt(req.gas), req.pc, false, false, dumpMemory);
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  let out;
  try {
    if (req.op === "bench") {
      const repeat = req.repeat || 1;
      let last = null;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < repeat; i++) last = runOnce(req, false);
      const ns = process.hrtime.bigint() - t0;
      out = { ns: Number(ns), repeat, gas: last.gas.toString(), status: STATUS[last.status] };
    } else {
      const r = runOnce(req, true);
      out = {
        status: STATUS[r.status] ?? `unknown(${r.status})`,
        pc: r.pc,
        gas: r.gas.toString(),
        regs: r.registers.map((x) => BigInt.asUintN(64, BigInt(x)).toString()),
        memory: r.memory.map((c) => [c.address, bytesToHex(c.data)]),
        exit: r.exitCode,
      };
    }
  } catch (e) {
    out = { error: String(e && e.stack ? e.stack : e) };
  }
  // anan-as may log to stdout; our lines carry a marker so readers can skip the rest.
  process.stdout.write("@@" + JSON.stringify(out) + "\n");
}
