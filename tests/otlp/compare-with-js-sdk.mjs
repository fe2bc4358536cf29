// SPDX-License-Identifier: MIT
//
// node compare-with-js-sdk.mjs TRACEHOP_BODY.json
//
// Compares the STRUCTURE of one tracehop OTLP/HTTP JSON export body with what OpenTelemetry's
// JavaScript SDK (@opentelemetry/sdk-trace-base + otlp-transformer's JsonTraceSerializer)
// serializes for equivalent spans: for every tracehop span, the SDK gets a span with the same
// ids, trace state, kind SERVER, name, times, status and attributes (each attribute with the
// value type the contract gives it, not the one tracehop chose), under a resource with the same
// attributes and the same instrumentation scope name and version. Both bodies are then walked
// together: the same keys at every level (lowerCamelCase), the same kind of value (hex ids of the
// right length, integer enums, decimal strings for 64-bit integers, ...).
//
// Where the SDK itself differs from OTLP's JSON rules, or leaves out nothing where tracehop
// leaves out a default, the difference is accepted only where the OTLP specification allows
// both, and printed as a NOTE:
//   - a key the SDK writes with its proto3 default value (0, "", [], {}) and tracehop omits:
//     OTLP/JSON receivers treat a missing field as its default;
//   - intValue as a JSON number (the SDK) against a decimal string (tracehop): the protobuf JSON
//     mapping writes int64 as a string and accepts both.
// Everything else is a mismatch: exit status 1 with one line per difference (path: what tracehop
// has / what the SDK has). Exit status 2: the body cannot be read, or node_modules is missing.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

async function load(name) {
    try {
        return await import(name);
    } catch (err) {
        console.error(`compare-with-js-sdk: cannot load ${name} (${err.code ?? err.message}).`);
        console.error(`Run \`npm ci\` in ${here} (node_modules is missing or incomplete).`);
        process.exit(2);
    }
}

const api = await load('@opentelemetry/api');
const core = await load('@opentelemetry/core');
const resources = await load('@opentelemetry/resources');
const sdk = await load('@opentelemetry/sdk-trace-base');
const transformer = await load('@opentelemetry/otlp-transformer');

if (process.argv.length !== 3) {
    console.error('usage: node compare-with-js-sdk.mjs TRACEHOP_BODY.json');
    process.exit(2);
}
let tracehop;
try {
    tracehop = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch (err) {
    console.error(`compare-with-js-sdk: ${process.argv[2]}: ${err.message}`);
    process.exit(2);
}

// --- the types the contract gives every attribute ---------------------------------------------

const ATTRIBUTE_TYPES = {
    // resource
    'service.name': 'string',
    'service.instance.id': 'string',
    'service.version': 'string',
    'telemetry.sdk.name': 'string',
    'telemetry.sdk.language': 'string',
    'telemetry.sdk.version': 'string',
    'deployment.environment.name': 'string',
    // span
    'http.request.method': 'string',
    'http.request.method_original': 'string',
    'url.path': 'string',
    'url.query': 'string',
    'url.scheme': 'string',
    'http.response.status_code': 'int',
    'http.route': 'string',
    'server.address': 'string',
    'server.port': 'int',
    'client.address': 'string',
    'user_agent.original': 'string',
    'network.protocol.version': 'string',
    'error.type': 'string',
    'http.request.body.size': 'int',
    'http.response.body.size': 'int',
    'tracehop.route': 'string',
    'tracehop.upstream': 'string',
    'tracehop.upstream.status_code': 'int',
    'tracehop.outcome': 'string',
    'tracehop.x_trace_id': 'string',
    'tracehop.upstream.duration_ms': 'double',
    'tracehop.upstream.connect_ms': 'double',
    'tracehop.upstream.first_byte_ms': 'double',
};

const problems = [];
const notes = new Set();

// A JS value of the contract's type for one tracehop attribute. Doubles are kept off whole
// numbers: the SDK writes a whole JS number as intValue, whatever the attribute means.
function jsValue(key, value, where) {
    const type = ATTRIBUTE_TYPES[key];
    if (!type) {
        problems.push(`${where}: attribute ${key} is not in the contract (no type to give the SDK)`);
        return undefined;
    }
    const raw = value && Object.values(value)[0];
    switch (type) {
    case 'string':
        return typeof raw === 'string' ? raw : String(raw);
    case 'int':
        return Number.parseInt(String(raw), 10) || 1;
    case 'double': {
        const n = Number(raw);
        return Number.isFinite(n) && !Number.isInteger(n) ? n : (Number.isFinite(n) ? n : 0) + 0.5;
    }
    }
    return undefined;
}

function attributesOf(owner, where) {
    const out = {};
    for (const a of owner?.attributes ?? []) {
        const v = jsValue(a.key, a.value, where);
        if (v !== undefined)
            out[a.key] = v;
    }
    return out;
}

function hrTime(nanosText) {
    const n = BigInt(nanosText ?? '0');
    return [Number(n / 1000000000n), Number(n % 1000000000n)];
}

// --- the SDK's spans ----------------------------------------------------------------------------

const resourceSpans0 = tracehop.resourceSpans?.[0];
const scopeSpans0 = resourceSpans0?.scopeSpans?.[0];
const thSpans = scopeSpans0?.spans ?? [];
if (thSpans.length === 0) {
    console.error('compare-with-js-sdk: the tracehop body holds no span');
    process.exit(2);
}

// Ids come from tracehop's span: the SDK draws them through this generator.
let nextIds = { traceId: '', spanId: '' };
const idGenerator = {
    generateTraceId: () => nextIds.traceId,
    generateSpanId: () => nextIds.spanId,
};
const exporter = new sdk.InMemorySpanExporter();
const provider = new sdk.BasicTracerProvider({
    resource: resources.resourceFromAttributes(attributesOf(resourceSpans0.resource, 'resource')),
    idGenerator,
    sampler: new sdk.AlwaysOnSampler(),
    spanProcessors: [new sdk.SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer(scopeSpans0.scope?.name ?? '', scopeSpans0.scope?.version);

thSpans.forEach((th, i) => {
    nextIds = { traceId: th.traceId, spanId: th.spanId };
    let ctx = api.ROOT_CONTEXT;
    if (th.parentSpanId) {
        ctx = api.trace.setSpanContext(api.ROOT_CONTEXT, {
            traceId: th.traceId,
            spanId: th.parentSpanId,
            traceFlags: (th.flags ?? 1) & 0xff,
            isRemote: ((th.flags ?? 0) & 0x200) !== 0,
            traceState: th.traceState ? new core.TraceState(th.traceState) : undefined,
        });
    }
    const span = tracer.startSpan(th.name, {
        kind: api.SpanKind.SERVER,
        startTime: hrTime(th.startTimeUnixNano),
        attributes: attributesOf(th, `span ${i}`),
    }, ctx);
    if (th.status?.code === 2)
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: th.status.message });
    span.end(hrTime(th.endTimeUnixNano));
});

const sdkBytes = transformer.JsonTraceSerializer.serializeRequest(exporter.getFinishedSpans());
const js = JSON.parse(new TextDecoder().decode(sdkBytes));

// --- the structural walk ----------------------------------------------------------------------

const HEX_LENGTH = { traceId: 32, spanId: 16, parentSpanId: 16 };
const INT_STRING_KEYS = new Set(['startTimeUnixNano', 'endTimeUnixNano', 'timeUnixNano']);
const ENUM_KEYS = new Set(['kind', 'code', 'flags']);

function kindOf(key, v) {
    if (v === null)
        return 'null';
    if (Array.isArray(v))
        return 'array';
    if (key in HEX_LENGTH)
        return typeof v === 'string' && new RegExp(`^[0-9a-f]{${HEX_LENGTH[key]}}$`).test(v)
                   ? `hex${HEX_LENGTH[key]}`
                   : `not hex${HEX_LENGTH[key]}: ${JSON.stringify(v)}`;
    if (INT_STRING_KEYS.has(key) || key === 'intValue') {
        if (typeof v === 'string' && /^-?[0-9]+$/.test(v))
            return 'int64 as string';
        if (typeof v === 'number' && Number.isInteger(v))
            return 'int64 as number';
        return `not an int64: ${JSON.stringify(v)}`;
    }
    if (ENUM_KEYS.has(key))
        return Number.isInteger(v) ? 'integer enum' : `not an integer: ${JSON.stringify(v)}`;
    return typeof v;
}

function isDefault(v) {
    return v === undefined || v === null || v === 0 || v === '' || v === false ||
           (Array.isArray(v) && v.length === 0) ||
           (typeof v === 'object' && !Array.isArray(v) && Object.values(v).every(isDefault));
}

function compare(path, key, th, sdkValue) {
    const a = kindOf(key, th), b = kindOf(key, sdkValue);
    if (a.startsWith('not ')) {
        problems.push(`${path}: tracehop has ${a}`);
        return;
    }
    if (a !== b) {
        if (key === 'intValue' && a === 'int64 as string' && b === 'int64 as number') {
            notes.add('the SDK writes intValue as a JSON number, tracehop as a decimal string ' +
                      '(the protobuf JSON mapping: string; parsers accept both)');
            return;
        }
        problems.push(`${path}: tracehop has ${a}, the SDK has ${b}`);
        return;
    }
    if (a === 'array') {
        if (key === 'attributes')
            return compareAttributes(path, th, sdkValue);
        if (th.length !== sdkValue.length)
            problems.push(`${path}: tracehop has ${th.length} elements, the SDK ${sdkValue.length}`);
        for (let i = 0; i < Math.min(th.length, sdkValue.length); i++)
            compare(`${path}[${i}]`, key, th[i], sdkValue[i]);
        return;
    }
    if (a === 'object')
        compareObjects(path, th, sdkValue);
}

function compareObjects(path, th, sdkValue) {
    for (const k of Object.keys(th)) {
        if (!/^[a-z][a-zA-Z0-9]*$/.test(k))
            problems.push(`${path}.${k}: key is not lowerCamelCase`);
        if (!(k in sdkValue) || sdkValue[k] === undefined) {
            if (isDefault(th[k]))
                notes.add(`${path.replace(/\[\d+\]/g, '[]')}.${k}: tracehop writes a default ` +
                          'value the SDK leaves out');
            else
                problems.push(`${path}.${k}: only tracehop has it (${JSON.stringify(th[k])})`);
            continue;
        }
        compare(`${path}.${k}`, k, th[k], sdkValue[k]);
    }
    for (const k of Object.keys(sdkValue)) {
        if (k in th || sdkValue[k] === undefined)
            continue;
        if (isDefault(sdkValue[k]))
            notes.add(`${path.replace(/\[\d+\]/g, '[]')}.${k}: the SDK writes its default ` +
                      `${JSON.stringify(sdkValue[k])}, tracehop leaves it out (allowed)`);
        else
            problems.push(`${path}.${k}: only the SDK has it (${JSON.stringify(sdkValue[k])})`);
    }
}

function compareAttributes(path, th, sdkValue) {
    const byKey = new Map(sdkValue.map(kv => [kv.key, kv]));
    const seen = new Set();
    for (const kv of th) {
        if (seen.has(kv.key))
            problems.push(`${path}: attribute ${kv.key} appears twice in tracehop's`);
        seen.add(kv.key);
        const other = byKey.get(kv.key);
        if (!other) {
            problems.push(`${path}: attribute ${kv.key} only in tracehop's`);
            continue;
        }
        compareObjects(`${path}{${kv.key}}`, kv, other);
    }
    for (const kv of sdkValue)
        if (!seen.has(kv.key))
            problems.push(`${path}: attribute ${kv.key} only in the SDK's ` +
                          `(${JSON.stringify(kv.value)})`);
}

compare('$', '', tracehop, js);

for (const note of [...notes].sort())
    console.log(`NOTE ${note}`);
if (problems.length > 0) {
    console.log(`\ntracehop's body differs from the JavaScript SDK's in ${problems.length} place(s):`);
    for (const p of problems)
        console.log(`  ${p}`);
    console.log('\nThe SDK serialized:');
    console.log(JSON.stringify(js, null, 1));
    process.exit(1);
}
console.log(`OK: ${thSpans.length} span(s), resource and scope have the SDK's structure`);
