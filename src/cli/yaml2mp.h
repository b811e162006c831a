/* YAML to msgpack for operator files (job specs and other policy documents).
 *
 * Lives outside the core because it reads files and uses libfyaml; the
 * core only ever sees the msgpack it produces. Built as the small library
 * cn_yaml (src/meson.build) so that the CLI and the tests link the same
 * code.
 *
 * Conversion (generic, no schema): mappings become msgpack maps with
 * string keys (a key must be a scalar; `1:` becomes the key "1"), sequences
 * become arrays, and scalars are typed like YAML 1.2's core schema when
 * plain (unquoted): null (~, null, empty), booleans (true/false in three
 * casings), integers (decimal, 0x hex, 0o octal, within int64), floats
 * (decimal with a point or exponent, .inf, .nan); everything else, and
 * every quoted or block scalar, is a string. Anchors and aliases are
 * refused (no expansion bombs); a tag !!str forces a string. Nesting is
 * limited to CN_MP_DEPTH_MAX. Duplicate keys are a parse error.
 *
 * Every error names the file and the 1-based line. For errors found later
 * by a schema decoder (a field path such as "spec.constraints[1].op"),
 * cn_yaml_line_of() gives the line of that field. */
#ifndef CN_CLI_YAML2MP_H
#define CN_CLI_YAML2MP_H

#include <stddef.h>
#include <stdint.h>

#include "core/jobspec.h"

enum { CN_YAML_ERR_MAX = 384 };

typedef struct cn_yaml cn_yaml;

/* Parse YAML text (one document). file names the source in messages.
 * On error, err (cap bytes, may be NULL) gets "file:line: reason".
 * Returns 0, CN_EINVAL (not YAML, empty, several documents) or CN_ENOMEM.
 * The caller frees *out with cn_yaml_free. text need not outlive *out. */
int cn_yaml_parse(const char *text, size_t len, const char *file, cn_yaml **out, char *err,
		  size_t cap);
/* Read and parse a file. Also CN_EIO (cannot read it). */
int cn_yaml_load(const char *path, cn_yaml **out, char *err, size_t cap);
void cn_yaml_free(cn_yaml *y);

/* A YAML stream of one or more documents separated by `---` (what
 * `canopy policy apply -f FILE` reads). fn is called for each non-empty
 * document, in order, with index 0, 1, ...; y is valid only during the
 * call, and its lines count from the start of the whole text. A parse
 * error anywhere stops before the document it is in (documents before it
 * were already handed to fn) and returns CN_EINVAL with "file:line: ...".
 * fn returning nonzero stops the walk and is returned. No document at all
 * is CN_EINVAL ("no documents"). */
typedef int (*cn_yaml_doc_fn)(void *arg, const cn_yaml *y, size_t index);
int cn_yaml_parse_stream(const char *text, size_t len, const char *file, cn_yaml_doc_fn fn,
			 void *arg, char *err, size_t cap);
/* Read a file (at most 4 * CN_JOB_DOC_MAX bytes) and parse it as a stream. */
int cn_yaml_load_stream(const char *path, cn_yaml_doc_fn fn, void *arg, char *err, size_t cap);
/* The source name given when parsing, for messages. */
const char *cn_yaml_file(const cn_yaml *y);

/* The document as msgpack into buf. Returns 0 and *len, CN_EINVAL (alias,
 * non-scalar key, too deep, integer out of range; err names file:line) or
 * CN_ENOSPACE (larger than cap). */
int cn_yaml_to_mp(const cn_yaml *y, uint8_t *buf, size_t cap, size_t *len, char *err,
		  size_t errcap);

/* 1-based line of the node at path ("a.b[2].c"); when the path goes past
 * what exists, the line of the deepest part that does; 0 if none. */
int cn_yaml_line_of(const cn_yaml *y, const char *path);

/* A job file: YAML -> msgpack -> cn_jobspec_decode (strict: unknown fields
 * are errors) -> canonical msgpack in mp (cap >= CN_JOB_DOC_MAX suffices).
 * Errors: "file:line: spec.constraints[1].op: must be one of =, !=, in,
 * not in". Returns 0 or the first error's code. */
int cn_yaml_jobspec(const char *text, size_t len, const char *file, cn_jobspec *spec,
		    uint8_t *mp, size_t cap, size_t *mp_len, char *err, size_t errcap);
int cn_yaml_jobspec_file(const char *path, cn_jobspec *spec, uint8_t *mp, size_t cap,
			 size_t *mp_len, char *err, size_t errcap);

#endif
