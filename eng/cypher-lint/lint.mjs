// Checks Cypher statements with Neo4j's own front end: the parser and semantic analysis of the Neo4j query
// compiler, compiled to JavaScript and published as @neo4j-cypher/language-support (pinned in package.json).
//
// Input (stdin, JSON): { "versions": ["CYPHER 5", "CYPHER 25"], "parameters": { "name": sample, ... },
//                        "statements": [{ "name": "...", "cypher": "...", "simulateCrash": false }] }
// Output (stdout, JSON): [{ "name", "version", "diagnostics": [{ "severity", "message", "line", "column", "source" }],
//                          "crash": null | "message" }]
//
// Every statement is checked twice per version:
// - lintCypherQuery: syntax errors, semantic errors and warnings (deprecations included), parameters not declared in
//   the schema, functions Neo4j does not have or has deprecated (the package's recorded function list).
// - the semantic analysis itself (analyzeQuery), called directly: lintCypherQuery swallows an exception of the
//   analyser and then reports no errors at all, so a crash would look like a clean statement. Here it is reported.
import { readFileSync } from 'node:fs';
import { lintCypherQuery, testData } from '@neo4j-cypher/language-support';
import { analyzeQuery } from './node_modules/@neo4j-cypher/language-support/dist/esm/project/language-support/src/syntaxValidation/semanticAnalysis.js';

const input = JSON.parse(readFileSync(0, 'utf8'));
const severities = { 1: 'error', 2: 'warning', 3: 'information', 4: 'hint' };
const schema = {
  functions: testData.mockSchema.functions,
  procedures: testData.mockSchema.procedures,
  parameters: input.parameters,
};

function analyse(cypher, version, simulateCrash) {
  if (simulateCrash) {
    // Negative control of the crash check: an analyser that throws must be reported, not read as "no errors".
    throw new Error('simulated crash of the semantic analysis');
  }

  const result = analyzeQuery(cypher, version);
  if (!result || !Array.isArray(result.errors) || !Array.isArray(result.notifications)) {
    throw new Error('the semantic analysis returned no result');
  }

  return result;
}

const results = [];
for (const statement of input.statements) {
  for (const version of input.versions) {
    const diagnostics = [];
    let crash = null;
    try {
      const linted = lintCypherQuery(`${version}\n${statement.cypher}`, schema).diagnostics;
      for (const d of linted) {
        diagnostics.push({
          severity: severities[d.severity] ?? String(d.severity),
          message: d.message,
          line: d.range.start.line,
          column: d.range.start.character,
          source: 'lint',
        });
      }

      const analysed = analyse(statement.cypher, version, statement.simulateCrash === true);
      for (const [severity, list] of [['error', analysed.errors], ['warning', analysed.notifications]]) {
        for (const e of list) {
          diagnostics.push({ severity, message: e.message, line: e.startPosition?.line ?? 0, column: e.startPosition?.column ?? 0, source: 'analysis' });
        }
      }
    } catch (error) {
      crash = String(error?.stack ?? error);
    }

    results.push({ name: statement.name, version, diagnostics, crash });
  }
}

process.stdout.write(JSON.stringify(results));
