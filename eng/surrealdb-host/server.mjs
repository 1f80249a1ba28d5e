// Test host for CrossStoreSync.SurrealDb: the real SurrealDB 3 engine (embedded through @surrealdb/node) behind a
// small HTTP facade that speaks the subset of the server's HTTP API the adapter uses (../../../shared PROTOCOLS §3-4):
//   GET /health, GET /version, POST /sql (SurrealQL text, Surreal-NS/Surreal-DB headers), POST /rpc (JSON).
// It listens on 127.0.0.1 only. Port: --port N or PORT (0 = a free port). On start it prints one line
// `listening http://127.0.0.1:<port>` to stdout, which the tests wait for. It stops on SIGTERM/SIGINT or when its
// standard input closes (so a test run that dies does not leave it behind).
// Known differences from `surreal start` are listed in the repository README ("SurrealDB" section).
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { CborCodec, DateTime, Decimal, Duration, RecordId, Table, Uuid } from "surrealdb";

const require = createRequire(import.meta.url);

// The package's public module exports only the JS SDK engine; the raw RPC entry point (execute CBOR, get CBOR) is on
// the native binding, which we load by path. Only glibc/musl Linux, macOS and Windows builds ship in the package.
function loadBinding() {
  const base = "./node_modules/@surrealdb/node/dist/surrealdb-node.";
  const { platform, arch } = process;
  const candidates = platform === "linux"
    ? [`linux-${arch}-gnu`, `linux-${arch}-musl`]
    : platform === "win32" ? [`win32-${arch}-msvc`] : [`${platform}-${arch}`];
  const errors = [];
  for (const c of candidates) {
    try {
      return require(`${base}${c}.node`);
    } catch (e) {
      errors.push(`${c}: ${e.message}`);
    }
  }
  throw new Error(`No @surrealdb/node binding loads on ${platform}-${arch}: ${errors.join("; ")}`);
}

const { SurrealNodeEngine } = loadBinding();
const cbor = new CborCodec({});
const engine = await SurrealNodeEngine.connect("mem://", undefined);
const user = process.env.SURREAL_HOST_USER;
const pass = process.env.SURREAL_HOST_PASS;
let nextId = 0;

async function execute(request) {
  const bytes = await engine.execute(cbor.encode({ id: ++nextId, ...request }));
  return cbor.decode(bytes);
}

const engineVersion = await execute({ method: "version", params: [] });

// One engine session per (namespace, database): concurrent requests for different databases must not see each
// other's `use` (the real server keeps a session per HTTP request).
const sessions = new Map();
async function sessionFor(ns, db) {
  const key = JSON.stringify([ns ?? null, db ?? null]);
  let pending = sessions.get(key);
  if (!pending) {
    pending = (async () => {
      const session = Uuid.v4();
      await execute({ session, method: "attach", params: [] });
      if (ns || db) {
        const used = await execute({ session, method: "use", params: [ns ?? null, db ?? null] });
        if (used && typeof used === "object" && "error" in used) throw new Error(used.error.message);
      }
      return session;
    })();
    sessions.set(key, pending);
    pending.catch(() => sessions.delete(key));
  }
  return pending;
}

// --- Rendering values like the server's into_json_value (PROTOCOLS §3.2) -----------------------------------------

const plainIdent = /^[A-Za-z_][A-Za-z0-9_]*$/;
const allDigits = /^[0-9]+$/;

function escapeKey(key) {
  if (typeof key === "string") {
    // 3.x: plain identifiers as they are; anything else, and all-digit strings, in backticks.
    if (plainIdent.test(key) && !allDigits.test(key)) return key;
    return "`" + key.replace(/\\/g, "\\\\").replace(/`/g, "\\`") + "`";
  }
  if (typeof key === "number" || typeof key === "bigint") return key.toString();
  if (key instanceof Uuid) return `u'${key.toString()}'`;
  return JSON.stringify(toPlain(key)); // object/array keys: approximate (see README)
}

function escapeTable(name) {
  return plainIdent.test(name) ? name : "`" + name.replace(/\\/g, "\\\\").replace(/`/g, "\\`") + "`";
}

// Converts an engine value into something writeJson can print, keeping 64-bit integers exact as BigInt.
function toPlain(value) {
  if (value === undefined || value === null) return null;
  if (typeof value === "bigint" || typeof value === "number" || typeof value === "string" || typeof value === "boolean") return value;
  if (value instanceof RecordId) return `${escapeTable(value.table.name)}:${escapeKey(value.id)}`;
  if (value instanceof DateTime) return value.toISOString().replace(/\.000Z$/, "Z");
  if (value instanceof Uuid || value instanceof Decimal || value instanceof Duration) return value.toString();
  if (value instanceof Table) return value.name;
  if (value instanceof Uint8Array) return Array.from(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Set) return Array.from(value, toPlain);
  if (Array.isArray(value)) return value.map(toPlain);
  if (typeof value.toJSON === "function" && Object.getPrototypeOf(value) !== Object.prototype) return toPlain(value.toJSON());
  const out = {};
  for (const k of Object.keys(value).sort()) out[k] = toPlain(value[k]);
  return out;
}

function writeJson(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "bigint": return value.toString();
    case "number": return Number.isFinite(value) ? JSON.stringify(value) : "null";
    case "string": return JSON.stringify(value);
    case "boolean": return value ? "true" : "false";
  }
  if (Array.isArray(value)) return "[" + value.map(writeJson).join(",") + "]";
  return "{" + Object.keys(value).map((k) => JSON.stringify(k) + ":" + writeJson(value[k])).join(",") + "}";
}

// --- The /rpc legacy-strand rule (PROTOCOLS §3.3), approximated -----------------------------------------------------

const recordIdStrand = /^([A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`|⟨(?:[^⟩\\]|\\.)*⟩):([A-Za-z0-9_]+|`(?:[^`\\]|\\.)*`|⟨(?:[^⟩\\]|\\.)*⟩)$/;
const datetimeStrand = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const uuidStrand = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function unescapePart(part) {
  if (part.startsWith("`") || part.startsWith("⟨")) return part.slice(1, -1).replace(/\\(.)/g, "$1");
  return part;
}

function fromJsonParam(value) {
  if (typeof value === "string") {
    const rid = recordIdStrand.exec(value);
    if (rid) {
      const key = unescapePart(rid[2]);
      return new RecordId(unescapePart(rid[1]), !rid[2].startsWith("`") && !rid[2].startsWith("⟨") && allDigits.test(key) ? Number(key) : key);
    }
    if (datetimeStrand.test(value)) return new DateTime(value);
    if (uuidStrand.test(value)) return new Uuid(value);
    return value;
  }
  if (Array.isArray(value)) return value.map(fromJsonParam);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromJsonParam(v);
    return out;
  }
  return value;
}

// --- HTTP ---------------------------------------------------------------------------------------------------------

function send(res, status, body, type = "application/json") {
  res.writeHead(status, { "content-type": type, "surreal-version": engineVersion, server: "crossstoresync-surrealdb-host" });
  res.end(body);
}

function requestError(res, status, description, information) {
  send(res, status, writeJson({ code: status, details: "Request problems dectected", description, information }));
}

function authorized(req) {
  if (!user) return true;
  const header = req.headers.authorization ?? "";
  return header === "Basic " + Buffer.from(`${user}:${pass ?? ""}`).toString("base64");
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

async function handleSql(req, res) {
  const sql = await readBody(req);
  const url = new URL(req.url, "http://localhost");
  const vars = Object.fromEntries(url.searchParams.entries()); // URL parameters are plain string variables
  const session = await sessionFor(req.headers["surreal-ns"], req.headers["surreal-db"]);
  const result = await execute({ session, method: "query", params: [sql, vars] });
  if (result && typeof result === "object" && !Array.isArray(result) && "error" in result) {
    // The real server answers a query it cannot parse with HTTP 400 and this body shape.
    return requestError(res, 400, "There is a problem with your request. Refer to the documentation for further information.", result.error.message);
  }
  const items = result.map((item) => ({ type: null, ...item }));
  send(res, 200, writeJson(toPlain(items)));
}

async function handleRpc(req, res) {
  const contentType = req.headers["content-type"] ?? "";
  if (!contentType.startsWith("application/json")) return requestError(res, 415, "Unsupported media type", "Only application/json is served by this test host");
  let request;
  try {
    request = JSON.parse(await readBody(req));
  } catch (e) {
    return send(res, 200, writeJson({ error: { code: -32700, message: "Parse error", kind: "Validation", cause: null } }));
  }
  const session = await sessionFor(req.headers["surreal-ns"], req.headers["surreal-db"]);
  const params = fromJsonParam(request.params ?? []);
  const result = await execute({ session, method: request.method, params });
  const echo = process.env.ECHO_ID === "1" && request.id !== undefined ? { id: request.id } : {};
  if (result && typeof result === "object" && !Array.isArray(result) && "error" in result) {
    return send(res, 200, writeJson(toPlain({ ...echo, error: { cause: null, ...result.error } })));
  }
  send(res, 200, writeJson(toPlain({ ...echo, result })));
}

const server = createServer(async (req, res) => {
  try {
    const path = new URL(req.url, "http://localhost").pathname;
    if (req.method === "GET" && path === "/health") return send(res, 200, "", "text/plain");
    if (req.method === "GET" && path === "/version") return send(res, 200, engineVersion, "text/plain");
    if (!authorized(req)) return requestError(res, 401, "Authentication failed", "There was a problem with authentication");
    if (req.method === "POST" && path === "/sql") return await handleSql(req, res);
    if (req.method === "POST" && path === "/rpc") return await handleRpc(req, res);
    requestError(res, 404, "Not found", `No route for ${req.method} ${path}`);
  } catch (e) {
    requestError(res, 500, "Internal error", String(e?.message ?? e));
  }
});

const portArg = process.argv.indexOf("--port");
const port = Number(portArg >= 0 ? process.argv[portArg + 1] : process.env.PORT ?? 0);
server.keepAliveTimeout = 30_000;
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port}\n`);
});

function stop() {
  server.close();
  engine.free?.();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
