// What the AsyncAPI tools make of a document: the parser's diagnostics, and the
// models modelina generates from it (TypeScript and Python), as one JSON object
// on stdout.
//
// usage: node check_document.mjs <install dir holding node_modules> <asyncapi.json>
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [installDir, documentPath] = process.argv.slice(2);
const require = createRequire(join(installDir, 'package.json'));
const { Parser } = require('@asyncapi/parser');
const { TypeScriptGenerator, PythonGenerator } = require('@asyncapi/modelina');

const { document, diagnostics } = await new Parser().parse(readFileSync(documentPath, 'utf8'));
const report = {
  diagnostics: diagnostics.map((d) => ({
    severity: d.severity,
    code: String(d.code),
    message: d.message,
    path: d.path.join('/'),
  })),
  models: {},
};
if (document) {
  for (const [language, Generator] of [['typescript', TypeScriptGenerator], ['python', PythonGenerator]]) {
    const models = await new Generator().generate(document);
    report.models[language] = models.map((m) => ({ name: m.modelName, code: m.result }));
  }
}
process.stdout.write(JSON.stringify(report));
