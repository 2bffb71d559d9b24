# WebAssembly filters: the hostile test modules (tests/data/filters/*.wat, built here with
# wat2wasm by build.sh), the SDK examples (sdk/), the engine unit test and the CLI test.
find_program(AP_WAT2WASM wat2wasm REQUIRED) # Debian package wabt
set(AP_TEST_FILTER_DIR ${CMAKE_BINARY_DIR}/tests/filters)
file(GLOB AP_FILTER_WAT CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/data/filters/*.wat
     ${CMAKE_SOURCE_DIR}/tests/data/filters/*.wat.in)
set(AP_FILTER_WASM)
foreach(wat ${AP_FILTER_WAT})
  get_filename_component(n ${wat} NAME)
  string(REGEX REPLACE "\\.wat(\\.in)?$" ".wasm" n ${n})
  list(APPEND AP_FILTER_WASM ${AP_TEST_FILTER_DIR}/${n})
endforeach()
add_custom_command(
  OUTPUT ${AP_FILTER_WASM}
  COMMAND sh ${CMAKE_SOURCE_DIR}/tests/data/filters/build.sh ${AP_TEST_FILTER_DIR}
  DEPENDS ${AP_FILTER_WAT} ${CMAKE_SOURCE_DIR}/tests/data/filters/build.sh
  COMMENT "wat2wasm test filters")
# complex_filter.c: compiled C constructs (call_indirect, br_table, recursion) for the
# engine comparison, built like the SDK examples.
find_program(AP_WASM_CLANG NAMES clang clang-14)
if(AP_WASM_CLANG)
  add_custom_command(
    OUTPUT ${AP_TEST_FILTER_DIR}/complex_filter.wasm
    COMMAND ${AP_WASM_CLANG} --target=wasm32 -O2 -nostdlib -ffreestanding -mno-bulk-memory
            -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/sdk -Wl,--no-entry
            -Wl,-z,stack-size=16384 -Wl,--initial-memory=131072
            -o ${AP_TEST_FILTER_DIR}/complex_filter.wasm
            ${CMAKE_SOURCE_DIR}/tests/data/filters/complex_filter.c
    DEPENDS ${CMAKE_SOURCE_DIR}/tests/data/filters/complex_filter.c
            ${CMAKE_SOURCE_DIR}/sdk/aperture_filter.h ${AP_FILTER_WASM}
    COMMENT "wasm32 test filter complex_filter.wasm")
  list(APPEND AP_FILTER_WASM ${AP_TEST_FILTER_DIR}/complex_filter.wasm)
endif()
add_custom_target(test_filter_wasm DEPENDS ${AP_FILTER_WASM})

add_dependencies(test_filter test_filter_wasm)
if(TARGET sdk_filters)
  add_dependencies(test_filter sdk_filters)
endif()
target_compile_definitions(test_filter PRIVATE
  AP_TEST_FILTER_DIR="${AP_TEST_FILTER_DIR}" AP_SDK_FILTER_DIR="${CMAKE_BINARY_DIR}/filters")
set_tests_properties(unit.test_filter PROPERTIES TIMEOUT 900)

ap_add_test(unit.filter_cli python3 ${CMAKE_CURRENT_SOURCE_DIR}/filter_cli_test.py
  ${AP_BIN_DIR}/aperture ${AP_TEST_FILTER_DIR} ${CMAKE_BINARY_DIR}/filters
  ${CMAKE_SOURCE_DIR}/tests/data/filters/events.json)
set_tests_properties(unit.filter_cli PROPERTIES TIMEOUT 600)

# bench/filter_cost.c: per-event cost of each engine next to the same logic in native C
# (bench/run.sh). The native builds compile the very same filter sources.
if(AP_WASM_CLANG)
  set(AP_BENCH_DIR ${CMAKE_BINARY_DIR}/bench)
  file(MAKE_DIRECTORY ${AP_BENCH_DIR})
  add_custom_command(
    OUTPUT ${AP_BENCH_DIR}/filter_simple.wasm
    COMMAND ${AP_WASM_CLANG} --target=wasm32 -O2 -nostdlib -ffreestanding -mno-bulk-memory
            -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/sdk -Wl,--no-entry
            -Wl,-z,stack-size=16384 -Wl,--initial-memory=131072
            -o ${AP_BENCH_DIR}/filter_simple.wasm ${CMAKE_SOURCE_DIR}/bench/filter_simple.c
    DEPENDS ${CMAKE_SOURCE_DIR}/bench/filter_simple.c ${CMAKE_SOURCE_DIR}/sdk/aperture_filter.h
    COMMENT "wasm32 bench filter filter_simple.wasm")
  add_custom_target(bench_filter_wasm DEPENDS ${AP_BENCH_DIR}/filter_simple.wasm)
  foreach(pair simple:${CMAKE_SOURCE_DIR}/bench/filter_simple.c
               process:${CMAKE_SOURCE_DIR}/sdk/examples/process_filter.c
               sampling:${CMAKE_SOURCE_DIR}/sdk/examples/sampling_filter.c)
    string(REPLACE ":" ";" pair ${pair})
    list(GET pair 0 name)
    list(GET pair 1 src)
    add_library(bench_native_${name} OBJECT ${src})
    target_include_directories(bench_native_${name} PRIVATE ${CMAKE_SOURCE_DIR}/include
      ${CMAKE_SOURCE_DIR}/sdk)
    target_compile_definitions(bench_native_${name} PRIVATE AP_FILTER_NATIVE
      ap_filter=native_${name}_filter ap_init=native_${name}_init)
    list(APPEND AP_BENCH_NATIVE $<TARGET_OBJECTS:bench_native_${name}>)
  endforeach()
  add_executable(bench_filter_cost ${CMAKE_SOURCE_DIR}/bench/filter_cost.c ${AP_BENCH_NATIVE})
  target_link_libraries(bench_filter_cost PRIVATE aperture_filter)
  set_target_properties(bench_filter_cost PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${AP_TEST_BIN_DIR})
  add_dependencies(bench_filter_cost bench_filter_wasm)
  if(TARGET sdk_filters)
    add_dependencies(bench_filter_cost sdk_filters)
  endif()
endif()
