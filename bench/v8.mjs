// Runs a wasm32-wasip1 command module (the core micro-benchmark, or a test binary such as
// tests/rsa_differential.rs) inside Node.js's V8: the same engine Envoy embeds, so its timings
// are close to what the filter pays per request, and its SIMD code is the code Envoy runs.
// usage: node bench/v8.mjs file.wasm [args...]   (the environment is passed through)
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: process.env, returnOnExit: true });
const mod = await WebAssembly.compile(await readFile(file));
const imports = wasi.getImportObject();
// The library also exports the proxy-wasm ABI; nothing run here calls the host, so its
// imports are stubs.
for (const imp of WebAssembly.Module.imports(mod)) {
  imports[imp.module] ??= {};
  imports[imp.module][imp.name] ??= () => 0;
}
const instance = await WebAssembly.instantiate(mod, imports);
// Only `_start`: node refuses a module that also exports `_initialize`, as the library does.
process.exitCode = wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } });
