;; wat-delay: a faultgate fault plugin written by hand in the WebAssembly
;; text format, with no compiler and no bindings generator. It shows what
;; every plugin is underneath, whatever language it was written in: a
;; component that exports `faultgate:plugin/meta` and `faultgate:plugin/tcp`
;; (contract 0.2.0, see wit/faultgate.wit) with the canonical ABI's memory
;; layouts.
;;
;; The fault: every chunk is passed on 200 ms after it arrived. It takes no
;; attributes. Load it as it is (faultgate reads the text format):
;;
;;   faultgate plugin check plugins/examples/wat-delay/wat-delay.wat
;;   curl --data-binary @plugins/examples/wat-delay/wat-delay.wat localhost:8474/plugins
;;
;; The contract has two resources. A `fault` is made once per attached toxic
;; (`[static]fault.create`) and holds what its attributes came to; for every
;; direction of every connection the toxic applies to, its `open` makes a
;; `filter`, which answers each chunk. One instance of this component serves
;; the toxic for as long as it lives, so nothing may pile up in its memory
;; from one call to the next.
(component
  ;; The contract's shared types, as the host provides them. Importing them
  ;; gives them their WIT names, which exported functions must use.
  (import "faultgate:plugin/types@0.2.0" (instance $types
    (type $direction' (enum "upstream" "downstream"))
    (export "direction" (type $direction (eq $direction')))
    (type $value' (variant (case "integer" s64) (case "float" f64) (case "boolean" bool) (case "text" string)))
    (export "value" (type $value (eq $value')))
    (type $attributes' (list (tuple string $value)))
    (export "attributes" (type $attributes (eq $attributes')))
    (type $value-type' (enum "integer" "float" "boolean" "text"))
    (export "value-type" (type $value-type (eq $value-type')))
    (type $attribute-spec' (record
      (field "name" string)
      (field "type" $value-type)
      (field "default" (option $value))
      (field "summary" string)))
    (export "attribute-spec" (type $attribute-spec (eq $attribute-spec')))
    (type $description' (record
      (field "name" string)
      (field "version" string)
      (field "summary" string)
      (field "attributes" (list $attribute-spec))
      (field "wants-bytes" bool)))
    (export "description" (type $description (eq $description')))
    (type $conn-info' (record
      (field "id" u64)
      (field "proxy" string)
      (field "client" string)
      (field "upstream" string)
      (field "stream" $direction)))
    (export "conn-info" (type $conn-info (eq $conn-info')))
    (type $byte-range' (record (field "start" u32) (field "end" u32)))
    (export "byte-range" (type $byte-range (eq $byte-range')))
    (type $chunk' (record
      (field "len" u32)
      (field "arrived-us" u64)
      (field "bytes" (option (list u8)))))
    (export "chunk" (type $chunk (eq $chunk')))
    (type $step' (variant
      (case "forward" $byte-range)
      (case "write" (list u8))
      (case "sleep" u64)
      (case "drop")
      (case "hold")
      (case "close")
      (case "reset")
      (case "wake" u64)))
    (export "step" (type $step (eq $step')))))
  (alias export $types "attributes" (type $attributes))
  (alias export $types "description" (type $description))
  (alias export $types "conn-info" (type $conn-info))
  (alias export $types "chunk" (type $chunk))
  (alias export $types "step" (type $step))

  ;; A resource's representation is the one i32 the host keeps for it and
  ;; hands back as `self`. Both resources here need to know only the delay,
  ;; so the delay in microseconds is their whole representation. A fault
  ;; with more to keep would make it the address of a record in memory, and
  ;; give the resource a destructor (`(dtor ...)`) that frees it.
  (type $fault (resource (rep i32)))
  (type $filter (resource (rep i32)))
  (core func $fault.new (canon resource.new $fault))
  (core func $filter.new (canon resource.new $filter))

  (core module $plugin
    (import "fault" "new" (func $fault.new (param i32) (result i32)))
    (import "filter" "new" (func $filter.new (param i32) (result i32)))
    (memory (export "memory") 1)

    ;; What wat-delay's attributes come to: it takes none, so always 200 ms.
    (global $delay-us i32 (i32.const 200000))

    ;; Memory map. Every answer is written at a fixed place, which is safe
    ;; because the host reads it before it makes the next call:
    ;;   16..   the strings
    ;;   256    describe's record; 320 validate's ok; 336 an error result
    ;;   352    create's result;   368 open's result;  384 an empty list of steps
    ;;   1024   on-data's two steps; 1056 the list that points at them
    ;;   4096.. what the host allocates for arguments (cabi_realloc), given
    ;;          back after each call (free-arguments)
    (data (i32.const 16) "wat-delay")
    (data (i32.const 32) "0.1.0")
    (data (i32.const 48) "Delays every chunk by 200 ms (a plugin written by hand in WebAssembly text)")
    (data (i32.const 160) "wat-delay takes no attributes")

    ;; description { name, version, summary: string (pointer, length),
    ;;   attributes: list (pointer, length), wants-bytes: bool }
    (data (i32.const 256)
      "\10\00\00\00" "\09\00\00\00"   ;; name
      "\20\00\00\00" "\05\00\00\00"   ;; version
      "\30\00\00\00" "\4b\00\00\00"   ;; summary (75 bytes)
      "\08\00\00\00" "\00\00\00\00"   ;; attributes: none
      "\00")                          ;; wants-bytes: false

    ;; A result is a tag byte (0 ok, 1 error), then its payload at offset 4:
    ;; a string (pointer, length) or a resource handle.
    (data (i32.const 320) "\00")
    (data (i32.const 336) "\01\00\00\00" "\a0\00\00\00" "\1d\00\00\00")

    ;; list<step> with no steps
    (data (i32.const 384) "\08\00\00\00" "\00\00\00\00")

    ;; step is a variant: tag byte, payload at offset 8, 16 bytes each.
    ;; [sleep(delay µs), forward(0, len)]; both numbers are written per chunk.
    ;; The tags are the case numbers in wit: forward 0, ..., sleep 2.
    (data (i32.const 1024)
      "\02\00\00\00\00\00\00\00" "\00\00\00\00\00\00\00\00"
      "\00\00\00\00\00\00\00\00" "\00\00\00\00\00\00\00\00")
    (data (i32.const 1056) "\00\04\00\00" "\02\00\00\00")

    ;; The host allocates argument memory here: a bump allocator. It never
    ;; moves an allocation ($old): the host only asks for new ones.
    (global $heap-start i32 (i32.const 4096))
    (global $heap (mut i32) (i32.const 4096))
    (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $at i32)
      (local.set $at
        (i32.and
          (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (global.set $heap (i32.add (local.get $at) (local.get $size)))
      (block $fits
        (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (br_if $fits
          (i32.ne
            (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1)))
            (i32.const -1)))
        unreachable)
      (local.get $at))

    ;; Run by the host once it has read a call's answer (`post-return`). No
    ;; argument is kept past its call, so the whole heap is free again; without
    ;; this, the strings of every connection's conn-info would pile up in this
    ;; long-lived instance until it hit its memory limit.
    (func (export "free-arguments") (param $answer i32)
      (global.set $heap (global.get $heap-start)))

    (func (export "describe") (result i32)
      (i32.const 256))

    ;; validate(attributes: list) -> result<_, string>
    (func (export "validate") (param $attrs i32) (param $attrs_len i32) (result i32)
      (select (i32.const 336) (i32.const 320) (local.get $attrs_len)))

    ;; [static]fault.create(attributes: list) -> result<own<fault>, string>
    ;; The same check as validate: any attribute is an error.
    (func (export "create") (param $attrs i32) (param $attrs_len i32) (result i32)
      (if (local.get $attrs_len) (then (return (i32.const 336))))
      (i32.store8 (i32.const 352) (i32.const 0))
      (i32.store (i32.const 356) (call $fault.new (global.get $delay-us)))
      (i32.const 352))

    ;; [method]fault.open(self: the fault's delay, conn-info flattened: id,
    ;; proxy, client, upstream, stream) -> result<own<filter>, string>
    ;; The filter gets its own copy of the delay, so it needs nothing of the
    ;; fault afterwards.
    (func (export "open")
      (param $delay-us i32)
      (param $id i64) (param i32 i32) (param i32 i32) (param i32 i32) (param $stream i32)
      (result i32)
      (i32.store8 (i32.const 368) (i32.const 0))
      (i32.store (i32.const 372) (call $filter.new (local.get $delay-us)))
      (i32.const 368))

    (func (export "on-open") (param $delay-us i32) (result i32)
      (i32.const 384))

    ;; on-data(self: the filter's delay, chunk flattened: len, arrived-us,
    ;; bytes option) -> list<step>
    (func (export "on-data")
      (param $delay-us i32) (param $len i32) (param $arrived i64)
      (param $has_bytes i32) (param $bytes i32) (param $bytes_len i32) (result i32)
      (i64.store (i32.const 1032) (i64.extend_i32_u (local.get $delay-us)))
      (i32.store (i32.const 1052) (local.get $len))
      (i32.const 1056))

    ;; wat-delay never asks for a `wake` step, so this is never called; the
    ;; contract has every filter answer it all the same.
    (func (export "on-wake") (param $delay-us i32) (result i32)
      (i32.const 384))

    (func (export "on-close") (param $delay-us i32) (result i32)
      (i32.const 384)))

  (core instance $plugin (instantiate $plugin
    (with "fault" (instance (export "new" (func $fault.new))))
    (with "filter" (instance (export "new" (func $filter.new))))))
  (alias core export $plugin "memory" (core memory $memory))
  (alias core export $plugin "cabi_realloc" (core func $realloc))
  (alias core export $plugin "free-arguments" (core func $free-arguments))

  (func $describe (result $description)
    (canon lift (core func $plugin "describe") (memory $memory)))
  (func $validate (param "attributes" $attributes) (result (result (error string)))
    (canon lift (core func $plugin "validate") (memory $memory) (realloc $realloc)
      (post-return $free-arguments)))
  (instance $meta
    (export "describe" (func $describe))
    (export "validate" (func $validate)))
  (export "faultgate:plugin/meta@0.2.0" (instance $meta))

  ;; A `borrow` of a resource this component defines reaches the core
  ;; function as the resource's representation (here, the delay); an `own`
  ;; it returns is a handle made by resource.new.
  (func $create (param "attributes" $attributes) (result (result (own $fault) (error string)))
    (canon lift (core func $plugin "create") (memory $memory) (realloc $realloc)
      (post-return $free-arguments)))
  (func $open (param "self" (borrow $fault)) (param "conn" $conn-info)
    (result (result (own $filter) (error string)))
    (canon lift (core func $plugin "open") (memory $memory) (realloc $realloc)
      (post-return $free-arguments)))
  (func $on-open (param "self" (borrow $filter)) (result (list $step))
    (canon lift (core func $plugin "on-open") (memory $memory)))
  (func $on-data (param "self" (borrow $filter)) (param "chunk" $chunk) (result (list $step))
    (canon lift (core func $plugin "on-data") (memory $memory) (realloc $realloc)
      (post-return $free-arguments)))
  (func $on-wake (param "self" (borrow $filter)) (result (list $step))
    (canon lift (core func $plugin "on-wake") (memory $memory)))
  (func $on-close (param "self" (borrow $filter)) (result (list $step))
    (canon lift (core func $plugin "on-close") (memory $memory)))

  ;; A resource's functions are exported under names (`[static]fault.create`,
  ;; `[method]filter.on-data`) that need the resource exported first, in the
  ;; same component: this small component does only that.
  (component $tcp-interface
    (type $direction' (enum "upstream" "downstream"))
    (import "direction" (type $direction (eq $direction')))
    (type $value' (variant (case "integer" s64) (case "float" f64) (case "boolean" bool) (case "text" string)))
    (import "value" (type $value (eq $value')))
    (type $attributes' (list (tuple string $value)))
    (import "attributes" (type $attributes (eq $attributes')))
    (type $conn-info' (record
      (field "id" u64)
      (field "proxy" string)
      (field "client" string)
      (field "upstream" string)
      (field "stream" $direction)))
    (import "conn-info" (type $conn-info (eq $conn-info')))
    (type $byte-range' (record (field "start" u32) (field "end" u32)))
    (import "byte-range" (type $byte-range (eq $byte-range')))
    (type $chunk' (record (field "len" u32) (field "arrived-us" u64) (field "bytes" (option (list u8)))))
    (import "chunk" (type $chunk (eq $chunk')))
    (type $step' (variant
      (case "forward" $byte-range)
      (case "write" (list u8))
      (case "sleep" u64)
      (case "drop")
      (case "hold")
      (case "close")
      (case "reset")
      (case "wake" u64)))
    (import "step" (type $step (eq $step')))
    (import "fault" (type $fault (sub resource)))
    (import "filter" (type $filter (sub resource)))
    (import "create" (func $create (param "attributes" $attributes)
      (result (result (own $fault) (error string)))))
    (import "open" (func $open (param "self" (borrow $fault)) (param "conn" $conn-info)
      (result (result (own $filter) (error string)))))
    (import "on-open" (func $on-open (param "self" (borrow $filter)) (result (list $step))))
    (import "on-data" (func $on-data (param "self" (borrow $filter)) (param "chunk" $chunk) (result (list $step))))
    (import "on-wake" (func $on-wake (param "self" (borrow $filter)) (result (list $step))))
    (import "on-close" (func $on-close (param "self" (borrow $filter)) (result (list $step))))
    (export $fault-export "fault" (type $fault))
    (export $filter-export "filter" (type $filter))
    (export "[static]fault.create" (func $create)
      (func (param "attributes" $attributes)
        (result (result (own $fault-export) (error string)))))
    (export "[method]fault.open" (func $open)
      (func (param "self" (borrow $fault-export)) (param "conn" $conn-info)
        (result (result (own $filter-export) (error string)))))
    (export "[method]filter.on-open" (func $on-open)
      (func (param "self" (borrow $filter-export)) (result (list $step))))
    (export "[method]filter.on-data" (func $on-data)
      (func (param "self" (borrow $filter-export)) (param "chunk" $chunk) (result (list $step))))
    (export "[method]filter.on-wake" (func $on-wake)
      (func (param "self" (borrow $filter-export)) (result (list $step))))
    (export "[method]filter.on-close" (func $on-close)
      (func (param "self" (borrow $filter-export)) (result (list $step)))))

  (alias export $types "direction" (type $direction))
  (alias export $types "value" (type $value))
  (alias export $types "byte-range" (type $byte-range))
  (instance $tcp (instantiate $tcp-interface
    (with "direction" (type $direction))
    (with "value" (type $value))
    (with "attributes" (type $attributes))
    (with "conn-info" (type $conn-info))
    (with "byte-range" (type $byte-range))
    (with "chunk" (type $chunk))
    (with "step" (type $step))
    (with "fault" (type $fault))
    (with "filter" (type $filter))
    (with "create" (func $create))
    (with "open" (func $open))
    (with "on-open" (func $on-open))
    (with "on-data" (func $on-data))
    (with "on-wake" (func $on-wake))
    (with "on-close" (func $on-close))))
  (export "faultgate:plugin/tcp@0.2.0" (instance $tcp)))
