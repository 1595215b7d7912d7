// `js_flaky`: an HTTP fault, written in JavaScript, that answers every Nth
// matching request with a status and leaves the others alone: a server that
// fails now and then, in a pattern a test can count on.
//
// The count lives in the `Fault`, of which there is one per attached toxic,
// so it runs across every connection and request the toxic sees: with
// `every` 2, the 2nd, 4th, 6th... matching request gets `status`, whichever
// connection it came on. Attached `upstream` the fault answers in the
// server's place (the server never sees the request); attached
// `downstream` the server does the work and the client hears `status`.
//
// Build: jco componentize app.js --wit ../../../wit --world-name http-plugin
//        --disable all -o js_flaky.wasm

import { log } from 'faultgate:plugin/host@0.2.0';

const ATTRIBUTES = [
  {
    name: 'every',
    type: 'integer',
    default: { tag: 'integer', val: 2n },
    summary: 'answer every Nth matching request (counted across connections); 1 = all',
  },
  {
    name: 'status',
    type: 'integer',
    default: { tag: 'integer', val: 503n },
    summary: 'the status those requests get',
  },
  {
    name: 'path_prefix',
    type: 'text',
    default: { tag: 'text', val: '' },
    summary: 'count only requests whose path starts with this',
  },
];

// Declarations, not attributes: what the JavaScript engine needs beyond
// faultgate's default limits (see plugins/languages/js.md).
const RUNTIME_NEEDS = [
  {
    name: '@memory-mib',
    type: 'integer',
    default: { tag: 'integer', val: 64n },
    summary: 'the memory one instance needs, in MiB',
  },
  {
    name: '@deadline-ms',
    type: 'integer',
    default: { tag: 'integer', val: 1000n },
    summary: 'the time one call may need, in milliseconds',
  },
];

export const meta = {
  describe() {
    return {
      name: 'js_flaky',
      version: '0.1.0',
      summary: 'Answers every Nth matching request with a status, across connections',
      attributes: [...ATTRIBUTES, ...RUNTIME_NEEDS],
      wantsBytes: false,
    };
  },
  validate(attributes) {
    settings(attributes);
  },
};

// The attributes, checked; a thrown string is the API caller's 400.
function settings(attributes) {
  const every = integer(attributes, 'every');
  if (every < 1) {
    throw `every: expected a whole number of requests, at least 1, got ${every}`;
  }
  const status = integer(attributes, 'status');
  if (status < 100 || status > 999) {
    throw `status: expected an HTTP status (100-999), got ${status}`;
  }
  const prefix = value(attributes, 'path_prefix');
  if (prefix.tag !== 'text') {
    throw `path_prefix: expected text, got ${prefix.val}`;
  }
  return { every, status, pathPrefix: prefix.val };
}

class Fault {
  constructor(settings) {
    this.settings = settings;
    // Matching requests seen so far, by every connection.
    this.matching = 0;
  }

  static create(attributes) {
    return new Fault(settings(attributes));
  }

  open(conn) {
    return new Exchange(this, conn.stream);
  }

  // Counts one matching request; true when it is an Nth one.
  isNth() {
    this.matching += 1;
    return this.matching % this.settings.every === 0;
  }
}

class Exchange {
  constructor(fault, stream) {
    this.fault = fault;
    // Attached upstream it answers at the request, downstream at the response.
    this.atRequest = stream === 'upstream';
    this.hit = false;
  }

  onRequest(request) {
    return guarded('on-request', () => {
      if (!request.path.startsWith(this.fault.settings.pathPrefix)) {
        return [];
      }
      this.hit = this.fault.isNth();
      if (this.hit) {
        log('debug', `js_flaky: answering ${request.method} ${request.path} (matching request ${this.fault.matching})`);
      }
      return this.hit && this.atRequest ? [this.answer()] : [];
    });
  }

  onResponse(_response) {
    return guarded('on-response', () => (this.hit && !this.atRequest ? [this.answer()] : []));
  }

  answer() {
    const { status } = this.fault.settings;
    return {
      tag: 'respond',
      val: {
        status,
        headers: [{ name: 'content-type', value: 'text/plain' }],
        body: new TextEncoder().encode(`js_flaky: request ${this.fault.matching}\n`),
      },
    };
  }
}

export const http = { Fault, Exchange };

// An attribute's value, or its default; attributes arrive as
// [name, { tag, val }] pairs, integers as BigInt.
function value(attributes, name) {
  const given = attributes.find(([key]) => key === name);
  return given ? given[1] : ATTRIBUTES.find((spec) => spec.name === name).default;
}

function integer(attributes, name) {
  const { tag, val } = value(attributes, name);
  if (tag !== 'integer') {
    throw `${name}: expected an integer, got ${val}`;
  }
  return Number(val);
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
