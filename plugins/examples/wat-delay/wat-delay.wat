;; wat-delay: a faultgate fault plugin written by hand in the WebAssembly
;; text format, with no compiler and no bindings generator. It shows what
;; every plugin is underneath, whatever language it was written in: a
;; component that exports `faultgate:plugin/meta` and `faultgate:plugin/tcp`
;; (see wit/faultgate.wit) with the canonical ABI's memory layouts.
;;
;; The fault: every chunk is passed on 200 ms after it arrived. It takes no
;; attributes. Load it as it is (faultgate reads the text format):
;;
;;   faultgate plugin check plugins/examples/wat-delay/wat-delay.wat
;;   curl --data-binary @plugins/examples/wat-delay/wat-delay.wat localhost:8474/plugins
(component
  ;; The contract's shared types, as the host provides them. Importing them
  ;; gives them their WIT names, which exported functions must use.
  (import "faultgate:plugin/types@0.1.0" (instance $types
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
      (case "reset")))
    (export "step" (type $step (eq $step')))))
  (alias export $types "attributes" (type $attributes))
  (alias export $types "description" (type $description))
  (alias export $types "conn-info" (type $conn-info))
  (alias export $types "chunk" (type $chunk))
  (alias export $types "step" (type $step))

  ;; One filter per connection. It needs no state, so its representation is
  ;; just the number 1.
  (type $filter (resource (rep i32)))
  (core func $filter.new (canon resource.new $filter))

  (core module $plugin
    (import "resource" "new" (func $filter.new (param i32) (result i32)))
    (memory (export "memory") 1)

    ;; Memory map (every answer is a fixed place the host reads before the
    ;; next call, so nothing is ever freed):
    ;;   16..   the strings
    ;;   256    describe's record; 320 validate's ok; 336 an error result
    ;;   352    open's result;     384 an empty list of steps
    ;;   1024   on-data's two steps; 1056 the list that points at them
    ;;   4096.. what the host allocates for arguments (cabi_realloc)
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

    ;; result<_, string>: tag byte, then the string at offset 4
    (data (i32.const 320) "\00")
    (data (i32.const 336) "\01\00\00\00" "\a0\00\00\00" "\1d\00\00\00")

    ;; list<step> with no steps
    (data (i32.const 384) "\08\00\00\00" "\00\00\00\00")

    ;; step is a variant: tag byte, payload at offset 8, 16 bytes each.
    ;; [sleep(200000 µs), forward(0, len)]; len is written per chunk.
    (data (i32.const 1024)
      "\02\00\00\00\00\00\00\00" "\40\0d\03\00\00\00\00\00"
      "\00\00\00\00\00\00\00\00" "\00\00\00\00\00\00\00\00")
    (data (i32.const 1056) "\00\04\00\00" "\02\00\00\00")

    ;; The host allocates argument memory here: a bump allocator.
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

    (func (export "describe") (result i32)
      (i32.const 256))

    ;; validate(attributes: list) -> result<_, string>
    (func (export "validate") (param $attrs i32) (param $attrs_len i32) (result i32)
      (select (i32.const 336) (i32.const 320) (local.get $attrs_len)))

    ;; [static]filter.open(conn-info flattened: id, proxy, client, upstream,
    ;; stream; then attributes) -> result<own<filter>, string>
    (func (export "open")
      (param $id i64) (param i32 i32) (param i32 i32) (param i32 i32) (param $stream i32)
      (param $attrs i32) (param $attrs_len i32) (result i32)
      (if (local.get $attrs_len) (then (return (i32.const 336))))
      (i32.store8 (i32.const 352) (i32.const 0))
      (i32.store (i32.const 356) (call $filter.new (i32.const 1)))
      (i32.const 352))

    (func (export "on-open") (param $self i32) (result i32)
      (i32.const 384))

    ;; on-data(self, chunk flattened: len, arrived-us, bytes option) -> list<step>
    (func (export "on-data")
      (param $self i32) (param $len i32) (param $arrived i64)
      (param $has_bytes i32) (param $bytes i32) (param $bytes_len i32) (result i32)
      (i32.store (i32.const 1052) (local.get $len))
      (i32.const 1056))

    (func (export "on-close") (param $self i32) (result i32)
      (i32.const 384)))

  (core instance $plugin (instantiate $plugin
    (with "resource" (instance (export "new" (func $filter.new))))))
  (alias core export $plugin "memory" (core memory $memory))
  (alias core export $plugin "cabi_realloc" (core func $realloc))

  (func $describe (result $description)
    (canon lift (core func $plugin "describe") (memory $memory)))
  (func $validate (param "attributes" $attributes) (result (result (error string)))
    (canon lift (core func $plugin "validate") (memory $memory) (realloc $realloc)))
  (instance $meta
    (export "describe" (func $describe))
    (export "validate" (func $validate)))
  (export "faultgate:plugin/meta@0.1.0" (instance $meta))

  (func $open (param "conn" $conn-info) (param "attributes" $attributes) (result (result (own $filter) (error string)))
    (canon lift (core func $plugin "open") (memory $memory) (realloc $realloc)))
  (func $on-open (param "self" (borrow $filter)) (result (list $step))
    (canon lift (core func $plugin "on-open") (memory $memory)))
  (func $on-data (param "self" (borrow $filter)) (param "chunk" $chunk) (result (list $step))
    (canon lift (core func $plugin "on-data") (memory $memory) (realloc $realloc)))
  (func $on-close (param "self" (borrow $filter)) (result (list $step))
    (canon lift (core func $plugin "on-close") (memory $memory)))

  ;; A resource's methods are exported under names (`[method]filter.on-data`)
  ;; that need the resource exported first, in the same component: this small
  ;; component does only that.
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
      (case "reset")))
    (import "step" (type $step (eq $step')))
    (import "filter" (type $filter (sub resource)))
    (import "open" (func $open (param "conn" $conn-info) (param "attributes" $attributes)
      (result (result (own $filter) (error string)))))
    (import "on-open" (func $on-open (param "self" (borrow $filter)) (result (list $step))))
    (import "on-data" (func $on-data (param "self" (borrow $filter)) (param "chunk" $chunk) (result (list $step))))
    (import "on-close" (func $on-close (param "self" (borrow $filter)) (result (list $step))))
    (export $filter-export "filter" (type $filter))
    (export "[static]filter.open" (func $open)
      (func (param "conn" $conn-info) (param "attributes" $attributes)
        (result (result (own $filter-export) (error string)))))
    (export "[method]filter.on-open" (func $on-open)
      (func (param "self" (borrow $filter-export)) (result (list $step))))
    (export "[method]filter.on-data" (func $on-data)
      (func (param "self" (borrow $filter-export)) (param "chunk" $chunk) (result (list $step))))
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
    (with "filter" (type $filter))
    (with "open" (func $open))
    (with "on-open" (func $on-open))
    (with "on-data" (func $on-data))
    (with "on-close" (func $on-close))))
  (export "faultgate:plugin/tcp@0.1.0" (instance $tcp)))
