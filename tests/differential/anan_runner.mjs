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
//          memory: the non-zero runs of every requested page, read page by page (see
//          `pageChunks`); a run never crosses a page end.
//   bench: {"ns": <total nanoseconds>, "repeat": n, "gas": "<gas left after one run>"}
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const dir = process.argv[2];
const mod = await import(
  pathToFileURL(join(dir, "node_modules/@fluffylabs/anan-as/dist/build/release.js")).href
);
const { prepareProgram, runProgram, InputKind, HasMetadata } = mod;
const { resetGeneric, resetGenericWithMemory, setNextProgramCounter, nSteps } = mod;
const { getStatus, getProgramCounter, getGasLeft, getRegisters, getPageDump } = mod;
const PAGE = 4096;

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

function u32le(v) {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

// runProgram's memory dump (getOutputChunks in anan-as 1.2.0) carries a run of non-zero
// octets from the last octet of one allocated page into the first octet of the next
// allocated page, whatever its address, and reports it at the first page's address: a
// store ending at 0x21FFF followed by a read-only page at 0x30000 starting non-zero comes
// back as one chunk at 0x21FFC, the read-only octets "at" 0x22000. So the final memory is
// read here through the debugger API instead, one page at a time, from a second run of the
// same input; its status, pc, gas and registers must equal runProgram's (else: error).
function pageChunks(req, r) {
  const pageMap = [];
  for (const [address, length, writable] of req.pages) {
    pageMap.push(...u32le(address), ...u32le(length), writable ? 1 : 0);
  }
  const chunkMap = [];
  for (const [address, hex] of req.memory) {
    chunkMap.push(...u32le(address), ...u32le(hex.length / 2), ...hexToBytes(hex));
  }
  const regs = [];
  for (const x of req.regs) {
    let v = BigInt.asUintN(64, BigInt(x));
    for (let j = 0; j < 8; j++, v >>= 8n) regs.push(Number(v & 0xffn));
  }
  resetGenericWithMemory(
    hexToBytes(req.program), regs, new Uint8Array(pageMap), new Uint8Array(chunkMap),
    BigInt(req.gas), false,
  );
  setNextProgramCounter(req.pc);
  while (nSteps(10000)) {}
  const flat = getRegisters();
  const dbgRegs = [];
  for (let i = 0; i < 13; i++) {
    let v = 0n;
    for (let j = 7; j >= 0; j--) v = (v << 8n) | BigInt(flat[i * 8 + j]);
    dbgRegs.push(v.toString());
  }
  const mine = [STATUS[getStatus()], getProgramCounter(), getGasLeft().toString(), dbgRegs];
  const theirs = [
    STATUS[r.status], r.pc, r.gas.toString(),
    r.registers.map((x) => BigInt.asUintN(64, BigInt(x)).toString()),
  ];
  if (JSON.stringify(mine) !== JSON.stringify(theirs)) {
    throw new Error(`debugger run ${JSON.stringify(mine)} != runProgram ${JSON.stringify(theirs)}`);
  }
  const chunks = [];
  const seen = new Set();
  for (const [address, length] of req.pages) {
    for (let index = Math.floor(address / PAGE); index * PAGE < address + length; index++) {
      if (seen.has(index)) continue;
      seen.add(index);
      const page = getPageDump(index);
      for (let n = 0; n < PAGE; ) {
        if (page[n] === 0) { n++; continue; }
        const start = n;
        while (n < PAGE && page[n] !== 0) n++;
        chunks.push([index * PAGE + start, bytesToHex(page.subarray(start, n))]);
      }
    }
  }
  return chunks;
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
      const r = runOnce(req, false);
      out = {
        status: STATUS[r.status] ?? `unknown(${r.status})`,
        pc: r.pc,
        gas: r.gas.toString(),
        regs: r.registers.map((x) => BigInt.asUintN(64, BigInt(x)).toString()),
        memory: pageChunks(req, r),
        exit: r.exitCode,
      };
    }
  } catch (e) {
    out = { error: String(e && e.stack ? e.stack : e) };
  }
  // anan-as may log to stdout; our lines carry a marker so readers can skip the rest.
  process.stdout.write("@@" + JSON.stringify(out) + "\n");
}
