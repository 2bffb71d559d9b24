# The storage tests (test_selector, test_storage_*) need the storage library, which
# aperture_core does not hold (only the aggregator links it).
foreach(t test_selector test_storage_contract test_storage_durability)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE ap_storage)
  endif()
endforeach()

# The ClickHouse backend on a real single-node server that clickhouse_server.py starts (its
# own config, data folder and loopback ports; skipped with a reason when clickhouse-server is
# missing or cannot start): the same contract suite, and the backend's own tests.
add_executable(test_clickhouse_store ${CMAKE_CURRENT_SOURCE_DIR}/clickhouse_store.c)
target_link_libraries(test_clickhouse_store PRIVATE ap_storage aperture_core PkgConfig::CMOCKA)
set_target_properties(test_clickhouse_store PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${AP_TEST_BIN_DIR})
find_package(Python3 REQUIRED COMPONENTS Interpreter)
ap_add_test(unit.test_storage_contract_clickhouse ${Python3_EXECUTABLE}
  ${CMAKE_CURRENT_SOURCE_DIR}/clickhouse_server.py -- ${AP_TEST_BIN_DIR}/test_storage_contract)
ap_add_test(unit.test_storage_clickhouse ${Python3_EXECUTABLE}
  ${CMAKE_CURRENT_SOURCE_DIR}/clickhouse_server.py -- ${AP_TEST_BIN_DIR}/test_clickhouse_store)
# `make check` runs unit tests two at a time: one ClickHouse server at a time is enough load
set_tests_properties(unit.test_storage_contract_clickhouse unit.test_storage_clickhouse
  PROPERTIES TIMEOUT 600 RESOURCE_LOCK clickhouse)
