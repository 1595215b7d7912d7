// See attributes.h.

#include "attributes.h"

#include <stdlib.h>
#include <string.h>

typedef faultgate_plugin_types_value_t value_t;

void string_dup(string_t *out, const char *text) { {{bindings}}_string_dup(out, text); }

// The attribute `name`, or NULL when it is not given.
static const value_t *attribute(const attributes_t *attrs, const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; i < attrs->len; i++) {
    const string_t *key = &attrs->ptr[i].f0;
    if (key->len == len && memcmp(key->ptr, name, len) == 0) {
      return &attrs->ptr[i].f1;
    }
  }
  return NULL;
}

// `err` = "NAME: EXPECTED".
static bool refuse(string_t *err, const char *name, const char *expected) {
  char message[128];
  size_t at = append(message, sizeof message - 1, 0, name, strlen(name));
  at = append(message, sizeof message - 1, at, ": expected ", 11);
  at = append(message, sizeof message - 1, at, expected, strlen(expected));
  message[at] = 0;
  string_dup(err, message);
  return false;
}

bool non_negative(const attributes_t *attrs, const char *name, uint64_t fallback, uint64_t *out,
                  string_t *err) {
  const value_t *value = attribute(attrs, name);
  if (value == NULL) {
    *out = fallback;
    return true;
  }
  if (value->tag != FAULTGATE_PLUGIN_TYPES_VALUE_INTEGER || value->val.integer < 0) {
    return refuse(err, name, "a non-negative integer");
  }
  *out = (uint64_t)value->val.integer;
  return true;
}

bool number_attribute(const attributes_t *attrs, const char *name, double fallback, double *out,
                      string_t *err) {
  const value_t *value = attribute(attrs, name);
  if (value == NULL) {
    *out = fallback;
  } else if (value->tag == FAULTGATE_PLUGIN_TYPES_VALUE_FLOAT) {
    *out = value->val.float_;
  } else if (value->tag == FAULTGATE_PLUGIN_TYPES_VALUE_INTEGER) {
    *out = (double)value->val.integer;
  } else {
    return refuse(err, name, "a number");
  }
  return true;
}

bool text_attribute(const attributes_t *attrs, const char *name, const char *fallback, const uint8_t **out,
                    size_t *out_len, string_t *err) {
  const value_t *value = attribute(attrs, name);
  if (value == NULL) {
    *out = (const uint8_t *)fallback;
    *out_len = strlen(fallback);
    return true;
  }
  if (value->tag != FAULTGATE_PLUGIN_TYPES_VALUE_TEXT) {
    return refuse(err, name, "text");
  }
  *out = value->val.text.ptr;
  *out_len = value->val.text.len;
  return true;
}

void integer_spec(attribute_spec_t *spec, const char *name, int64_t fallback, const char *summary) {
  string_dup(&spec->name, name);
  spec->type = FAULTGATE_PLUGIN_TYPES_VALUE_TYPE_INTEGER;
  spec->default_.is_some = true;
  spec->default_.val.tag = FAULTGATE_PLUGIN_TYPES_VALUE_INTEGER;
  spec->default_.val.val.integer = fallback;
  string_dup(&spec->summary, summary);
}

void text_spec(attribute_spec_t *spec, const char *name, const char *fallback, const char *summary) {
  string_dup(&spec->name, name);
  spec->type = FAULTGATE_PLUGIN_TYPES_VALUE_TYPE_TEXT;
  spec->default_.is_some = true;
  spec->default_.val.tag = FAULTGATE_PLUGIN_TYPES_VALUE_TEXT;
  string_dup(&spec->default_.val.val.text, fallback);
  string_dup(&spec->summary, summary);
}

void float_spec(attribute_spec_t *spec, const char *name, double fallback, const char *summary) {
  string_dup(&spec->name, name);
  spec->type = FAULTGATE_PLUGIN_TYPES_VALUE_TYPE_FLOAT;
  spec->default_.is_some = true;
  spec->default_.val.tag = FAULTGATE_PLUGIN_TYPES_VALUE_FLOAT;
  spec->default_.val.val.float_ = fallback;
  string_dup(&spec->summary, summary);
}

size_t append(char *out, size_t size, size_t at, const char *text, size_t len) {
  size_t room = at < size ? size - at : 0;
  size_t n = len < room ? len : room;
  memcpy(out + at, text, n);
  return at + n;
}

size_t append_u64(char *out, size_t size, size_t at, uint64_t value) {
  char digits[20];
  size_t n = 0;
  do {
    digits[sizeof digits - 1 - n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  return append(out, size, at, digits + sizeof digits - n, n);
}
