// Runs a wasm32-wasip1 command module (the core micro-benchmark) inside Node.js's V8: the
// same engine Envoy embeds, so its timings are close to what the filter pays per request.
// usage: node bench/v8.mjs file.wasm
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const wasi = new WASI({ version: 'preview1', args: [], env: {} });
const mod = await WebAssembly.compile(await readFile(process.argv[2]));
const imports = wasi.getImportObject();
// The library also exports the proxy-wasm ABI; the benchmark never calls the host, so its
// imports are stubs.
for (const imp of WebAssembly.Module.imports(mod)) {
  imports[imp.module] ??= {};
  imports[imp.module][imp.name] ??= () => 0;
}
const instance = await WebAssembly.instantiate(mod, imports);
// Only `_start`: node refuses a module that also exports `_initialize`, as the library does.
wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } });
