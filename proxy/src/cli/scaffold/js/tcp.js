// `NAME`: a faultgate fault plugin in JavaScript.
//
// As written it delays every chunk by `delay` milliseconds and, when
// `reset_after` is set, resets the connection at that chunk. Change it into
// the fault you need: the host calls `onData` for every chunk of the
// direction the fault is attached to, and carries out the steps it returns,
// in order.
//
// One `Fault` is made per attached toxic and shared by its connections;
// `open` makes one `Filter` per connection direction, which keeps that
// connection's state.

import { log } from 'faultgate:plugin/host@0.2.0';

const ATTRIBUTES = [
  integer('delay', 0, 'delay of each chunk, in milliseconds'),
  integer('reset_after', 0, 'reset the connection at this chunk; 0 = never'),
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
      summary: 'Delays every chunk, and resets after some chunks if asked',
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
  return {
    delayMs: nonNegative(attributes, 'delay', 'milliseconds'),
    resetAfter: nonNegative(attributes, 'reset_after', 'chunks'),
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
    log('debug', `NAME on connection ${conn.id} from ${conn.client}`);
    return new Filter(this.settings);
  }
}

class Filter {
  constructor(settings) {
    this.settings = settings;
    this.chunksSeen = 0;
  }

  onOpen() {
    return [];
  }

  onData(chunk) {
    return guarded('on-data', () => {
      this.chunksSeen += 1;
      const { delayMs, resetAfter } = this.settings;
      if (resetAfter !== 0 && this.chunksSeen >= resetAfter) {
        return [{ tag: 'reset' }];
      }
      // Time in steps counts from the chunk's arrival.
      return [
        { tag: 'sleep', val: BigInt(delayMs) * 1000n },
        { tag: 'forward', val: { start: 0, end: chunk.len } },
      ];
    });
  }

  onWake() {
    return [];
  }

  onClose() {
    return [];
  }
}

export const tcp = { Fault, Filter };

// --- helpers ------------------------------------------------------------------

// An attribute-spec with an integer default (integers are BigInt in WIT's s64).
function integer(name, fallback, summary) {
  return { name, type: 'integer', default: { tag: 'integer', val: BigInt(fallback) }, summary };
}

// An integer attribute's value, or its default; attributes arrive as
// [name, { tag, val }] pairs.
function nonNegative(attributes, name, unit) {
  const given = attributes.find(([key]) => key === name);
  const value = given ? given[1] : ATTRIBUTES.find((spec) => spec.name === name).default;
  if (value.tag !== 'integer' || value.val < 0n) {
    throw `${name}: expected a non-negative integer (${unit}), got ${value.val}`;
  }
  return Number(value.val);
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
