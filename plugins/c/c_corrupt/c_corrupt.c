// `c_corrupt`: flips one bit in a chosen fraction of the bytes passing
// through, a TCP fault written in C.
//
// Which bytes, and which bit of each, come from a generator seeded from the
// connection's random stream (host.random), so under `faultgate serve
// --seed N` the same connections see the same bytes corrupted. Bytes are
// only ever changed in place: none is added, lost or reordered.
//
// Built as a `faultgate plugin new c_corrupt --lang c` scaffold with this
// file as its c_corrupt.c (see README.md beside it); attributes.h is the
// scaffold's.

#include <stdlib.h>

#include "attributes.h"

typedef faultgate_plugin_types_step_t step_t;
typedef exports_faultgate_plugin_tcp_list_step_t steps_t;

struct exports_faultgate_plugin_tcp_fault_t {
  // The chance that a byte is corrupted, 0 to 1.
  double probability;
};

struct exports_faultgate_plugin_tcp_filter_t {
  double probability;
  // splitmix64's state: a fast generator, seeded once per connection
  // direction, so a chunk costs no call into the host.
  uint64_t state;
};

static uint64_t next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static bool read_probability(const attributes_t *attrs, double *out, string_t *err) {
  double probability;
  if (!number_attribute(attrs, "probability", 0.001, &probability, err)) {
    return false;
  }
  // Written so that NaN fails too.
  if (!(probability >= 0 && probability <= 1)) {
    string_dup(err, "probability: expected a number from 0 to 1 (the fraction of bytes corrupted)");
    return false;
  }
  *out = probability;
  return true;
}

void exports_faultgate_plugin_meta_describe(exports_faultgate_plugin_meta_description_t *ret) {
  string_dup(&ret->name, "c_corrupt");
  string_dup(&ret->version, "0.1.0");
  string_dup(&ret->summary, "Flips one bit in a fraction of the bytes passing through");
  ret->attributes.len = 1;
  ret->attributes.ptr = calloc(1, sizeof *ret->attributes.ptr);
  float_spec(&ret->attributes.ptr[0], "probability", 0.001, "the chance that a byte is corrupted, 0 to 1");
  ret->wants_bytes = true;
}

bool exports_faultgate_plugin_meta_validate(exports_faultgate_plugin_meta_attributes_t *attributes,
                                            string_t *err) {
  double probability;
  bool ok = read_probability(attributes, &probability, err);
  faultgate_plugin_types_attributes_free(attributes);
  return ok;
}

bool exports_faultgate_plugin_tcp_static_fault_create(exports_faultgate_plugin_tcp_attributes_t *attributes,
                                                      exports_faultgate_plugin_tcp_own_fault_t *ret,
                                                      string_t *err) {
  double probability;
  bool ok = read_probability(attributes, &probability, err);
  faultgate_plugin_types_attributes_free(attributes);
  if (!ok) {
    return false;
  }
  struct exports_faultgate_plugin_tcp_fault_t *fault = malloc(sizeof *fault);
  fault->probability = probability;
  *ret = exports_faultgate_plugin_tcp_fault_new(fault);
  return true;
}

void exports_faultgate_plugin_tcp_fault_destructor(exports_faultgate_plugin_tcp_fault_t *rep) {
  free(rep);
}

bool exports_faultgate_plugin_tcp_method_fault_open(exports_faultgate_plugin_tcp_borrow_fault_t self,
                                                    exports_faultgate_plugin_tcp_conn_info_t *conn,
                                                    exports_faultgate_plugin_tcp_own_filter_t *ret,
                                                    string_t *err) {
  faultgate_plugin_types_conn_info_free(conn);
  struct exports_faultgate_plugin_tcp_filter_t *filter = malloc(sizeof *filter);
  filter->probability = self->probability;
  filter->state = faultgate_plugin_host_random();
  *ret = exports_faultgate_plugin_tcp_filter_new(filter);
  return true;
}

void exports_faultgate_plugin_tcp_filter_destructor(exports_faultgate_plugin_tcp_filter_t *rep) {
  free(rep);
}

static void one_step(steps_t *ret, step_t step) {
  ret->len = 1;
  ret->ptr = malloc(sizeof(step_t));
  ret->ptr[0] = step;
}

void exports_faultgate_plugin_tcp_method_filter_on_data(exports_faultgate_plugin_tcp_borrow_filter_t self,
                                                        exports_faultgate_plugin_tcp_chunk_t *chunk,
                                                        steps_t *ret) {
  step_t forward = {.tag = FAULTGATE_PLUGIN_TYPES_STEP_FORWARD};
  forward.val.forward.start = 0;
  forward.val.forward.end = chunk->len;
  if (self->probability == 0 || !chunk->bytes.is_some) {
    faultgate_plugin_types_chunk_free(chunk);
    one_step(ret, forward);
    return;
  }
  uint8_t *bytes = chunk->bytes.val.ptr;
  size_t len = chunk->bytes.val.len;
  size_t flipped = 0;
  for (size_t i = 0; i < len; i++) {
    uint64_t roll = next(&self->state);
    // The top 53 bits as a number in [0, 1); the low 3 bits pick the bit.
    if ((double)(roll >> 11) * 0x1p-53 < self->probability) {
      bytes[i] ^= (uint8_t)(1u << (roll & 7));
      flipped++;
    }
  }
  if (flipped == 0) {
    // Nothing changed: the host passes its own copy on, and this one goes.
    faultgate_plugin_types_chunk_free(chunk);
    one_step(ret, forward);
    return;
  }
  // The chunk's buffer becomes the written bytes; the bindings free it once
  // the host has read them.
  step_t write = {.tag = FAULTGATE_PLUGIN_TYPES_STEP_WRITE};
  write.val.write.ptr = bytes;
  write.val.write.len = len;
  one_step(ret, write);
}

static void no_steps(steps_t *ret) {
  ret->ptr = NULL;
  ret->len = 0;
}

void exports_faultgate_plugin_tcp_method_filter_on_open(exports_faultgate_plugin_tcp_borrow_filter_t self,
                                                        steps_t *ret) {
  no_steps(ret);
}

void exports_faultgate_plugin_tcp_method_filter_on_wake(exports_faultgate_plugin_tcp_borrow_filter_t self,
                                                        steps_t *ret) {
  no_steps(ret);
}

void exports_faultgate_plugin_tcp_method_filter_on_close(exports_faultgate_plugin_tcp_borrow_filter_t self,
                                                         steps_t *ret) {
  no_steps(ret);
}
