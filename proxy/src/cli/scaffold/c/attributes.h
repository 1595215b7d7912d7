// Reading a toxic's attributes and describing them, with errors that name
// the attribute at fault; and text for the log without stdio (which would
// import WASI's files). What the fault does is in {{file}}.c.

#ifndef ATTRIBUTES_H
#define ATTRIBUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "{{bindings}}.h"

typedef {{bindings}}_string_t string_t;
typedef faultgate_plugin_types_attributes_t attributes_t;
typedef faultgate_plugin_types_attribute_spec_t attribute_spec_t;

// `text` as a string the bindings may free (a malloc'd copy).
void string_dup(string_t *out, const char *text);

// A non-negative integer attribute, `fallback` when it is not given; false
// (with `err` naming the attribute) when it is something else.
bool non_negative(const attributes_t *attrs, const char *name, uint64_t fallback, uint64_t *out,
                  string_t *err);

// A number attribute (a float, or an integer taken as one), `fallback` when
// it is not given.
bool number_attribute(const attributes_t *attrs, const char *name, double fallback, double *out,
                      string_t *err);

// A text attribute (not copied: it lives as long as `attrs`), `fallback`
// when it is not given.
bool text_attribute(const attributes_t *attrs, const char *name, const char *fallback, const uint8_t **out,
                    size_t *out_len, string_t *err);

// The description of an integer, a text or a float attribute.
void integer_spec(attribute_spec_t *spec, const char *name, int64_t fallback, const char *summary);
void text_spec(attribute_spec_t *spec, const char *name, const char *fallback, const char *summary);
void float_spec(attribute_spec_t *spec, const char *name, double fallback, const char *summary);

// `len` bytes of `text` appended to `out` (`at` bytes used of `size`), cut
// to fit; the new length.
size_t append(char *out, size_t size, size_t at, const char *text, size_t len);
size_t append_u64(char *out, size_t size, size_t at, uint64_t value);

#endif
