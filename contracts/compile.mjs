// Compile AnchorRegistry.sol with the solc-js version pinned in package-lock.json and write the
// ABI and bytecode that the Python package loads. Deterministic: same inputs, same bytes.
//   node contracts/compile.mjs            write ledger/anchors/AnchorRegistry.json
//   node contracts/compile.mjs --out F    write F instead (the build test compares the two)
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const outIndex = process.argv.indexOf("--out");
const out = outIndex >= 0 ? process.argv[outIndex + 1] : join(root, "ledger", "anchors", "AnchorRegistry.json");

const settings = {
  evmVersion: "paris",
  optimizer: { enabled: true, runs: 10000 },
  metadata: { bytecodeHash: "ipfs" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};
const input = {
  language: "Solidity",
  sources: { "AnchorRegistry.sol": { content: readFileSync(join(here, "AnchorRegistry.sol"), "utf8") } },
  settings,
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const problems = (output.errors ?? []).filter((e) => e.severity === "error" || e.severity === "warning");
if (problems.length > 0) {
  for (const e of problems) console.error(e.formattedMessage);
  process.exit(1);
}
const contract = output.contracts["AnchorRegistry.sol"].AnchorRegistry;
const artefact = {
  contractName: "AnchorRegistry",
  compiler: `solc-js ${solc.version()}`,
  settings: { evmVersion: settings.evmVersion, optimizer: settings.optimizer },
  abi: contract.abi,
  bytecode: `0x${contract.evm.bytecode.object}`,
  deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
};
writeFileSync(out, `${JSON.stringify(artefact, null, 2)}\n`);
console.error(`wrote ${out}`);
