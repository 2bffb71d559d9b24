# `aperture query/diff/labels` against a scripted HTTP(S) server (tests/unit/query_cli_test.py);
# the real aggregator is tests/server/test_cli_query.py. No root needed.
ap_add_test(unit.query_cli python3 ${CMAKE_CURRENT_SOURCE_DIR}/query_cli_test.py
            $<TARGET_FILE:aperture-cli>)
