# test_agent_filter runs the SDK example filters (build/bin/*.wasm) through the agent's hook.
if(TARGET sdk_filters)
  add_dependencies(test_agent_filter sdk_filters)
endif()
