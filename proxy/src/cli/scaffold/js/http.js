// `NAME`: a faultgate HTTP fault plugin in JavaScript, for proxies in http
// mode.
//
// As written it answers requests whose path starts with `path_prefix` with
// `status`, after waiting `delay` milliseconds. Attached `upstream` it acts
// before the request reaches the server; attached `downstream`, after the
// server answered. Change it into the fault you need: the host calls
// `onRequest` and `onResponse` for every request the fault applies to, and
// carries out the actions they return.
//
// One `Fault` is made per attached toxic and shared by every request;
// `open` makes one `Exchange` per request.

import { log } from 'faultgate:plugin/host@0.2.0';

const ATTRIBUTES = [
  integer('status', 503, 'the status to answer with'),
  integer('delay', 0, 'wait before answering, in milliseconds'),
  text('path_prefix', '', 'act only on requests whose path starts with this'),
];

// What a JavaScript plugin needs of faultgate beyond its defaults (16 MiB
// of memory per instance, 100 ms a call): the most memory an instance may
// have, as ComponentizeJS 0.23 keeps some of every call's memory (see
// plugins/languages/js.md), and time for making an instance (the engine
// set up, then `create`), which can pass 100 ms on a busy machine. Names
// starting with '@' are read by faultgate as declarations, not offered as
// attributes.
const RUNTIME_NEEDS = [
  integer('@memory-mib', 64, 'the memory one instance needs, in MiB'),
  integer('@deadline-ms', 1000, 'the time one call may need, in milliseconds'),
];

export const meta = {
  describe() {
    return {
      name: 'NAME',
      version: '0.1.0',
      summary: 'Answers matching requests with a status, after a delay',
      attributes: [...ATTRIBUTES, ...RUNTIME_NEEDS],
      wantsBytes: false,
    };
  },
  // Throwing a string refuses the attributes: the API caller's 400.
  validate(attributes) {
    settings(attributes);
  },
};

function settings(attributes) {
  const status = nonNegative(attributes, 'status', 'an HTTP status');
  if (status < 100 || status > 999) {
    throw `status: expected an HTTP status (100-999), got ${status}`;
  }
  return {
    status,
    delayMs: nonNegative(attributes, 'delay', 'milliseconds'),
    pathPrefix: textValue(attributes, 'path_prefix'),
  };
}

class Fault {
  constructor(settings) {
    this.settings = settings;
  }

  static create(attributes) {
    return new Fault(settings(attributes));
  }

  open(conn) {
    log('debug', `NAME on connection ${conn.id}`);
    return new Exchange(this.settings, conn.stream);
  }
}

class Exchange {
  constructor(settings, stream) {
    this.settings = settings;
    // Attached upstream it acts at the request, downstream at the response.
    this.atRequest = stream === 'upstream';
    this.matched = false;
  }

  onRequest(request) {
    return guarded('on-request', () => {
      this.matched = request.path.startsWith(this.settings.pathPrefix);
      return this.matched && this.atRequest ? this.answer() : [];
    });
  }

  onResponse(_response) {
    return guarded('on-response', () => (this.matched && !this.atRequest ? this.answer() : []));
  }

  answer() {
    const { status, delayMs } = this.settings;
    return [
      { tag: 'delay', val: BigInt(delayMs) * 1000n },
      {
        tag: 'respond',
        val: {
          status,
          headers: [{ name: 'content-type', value: 'text/plain' }],
          body: new TextEncoder().encode('NAME\n'),
        },
      },
    ];
  }
}

export const http = { Fault, Exchange };

// --- helpers ------------------------------------------------------------------

// Attribute-specs with a default (integers are BigInt in WIT's s64).
function integer(name, fallback, summary) {
  return { name, type: 'integer', default: { tag: 'integer', val: BigInt(fallback) }, summary };
}

function text(name, fallback, summary) {
  return { name, type: 'text', default: { tag: 'text', val: fallback }, summary };
}

// An attribute's value, or its default; attributes arrive as
// [name, { tag, val }] pairs.
function value(attributes, name) {
  const given = attributes.find(([key]) => key === name);
  return given ? given[1] : ATTRIBUTES.find((spec) => spec.name === name).default;
}

function nonNegative(attributes, name, unit) {
  const { tag, val } = value(attributes, name);
  if (tag !== 'integer' || val < 0n) {
    throw `${name}: expected a non-negative integer (${unit}), got ${val}`;
  }
  return Number(val);
}

function textValue(attributes, name) {
  const { tag, val } = value(attributes, name);
  if (tag !== 'text') {
    throw `${name}: expected text, got ${val}`;
  }
  return val;
}

// An exception escaping a hook ends the instance (a trap) and its message
// would be lost; this writes it to faultgate's log first.
function guarded(hook, body) {
  try {
    return body();
  } catch (error) {
    log('error', `${hook} threw: ${error}${error && error.stack ? `\n${error.stack}` : ''}`);
    throw error;
  }
}
