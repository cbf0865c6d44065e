// The Khronos glTF validator on a file kinediff wrote:
//   npm install gltf-validator   (once, in any folder; NODE_PATH=<that folder>/node_modules)
//   python -c "..."  # write a .glb with kinediff.export.export_animation
//   node benchmarks/gltf_validate.mjs FILE.glb
// prints the counts of errors, warnings, infos and hints and the first messages; exits 1 on errors.
import { createRequire } from "module";
import { readFileSync } from "fs";
const require = createRequire(process.cwd() + "/");
const validator = require("gltf-validator");
const file = process.argv[2];
const report = await validator.validateBytes(new Uint8Array(readFileSync(file)), { maxIssues: 100 });
const issues = report.issues;
console.log(JSON.stringify({ file, validator: report.validatorVersion, errors: issues.numErrors,
  warnings: issues.numWarnings, infos: issues.numInfos, hints: issues.numHints,
  messages: issues.messages.slice(0, 20) }, null, 1));
process.exit(issues.numErrors > 0 ? 1 : 0);
