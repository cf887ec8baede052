# exchange_bench: one outer step's exchange between two processes at a real model size (time,
# bytes, peak memory above the model state), through the node's own code.
if(TARGET noloco_trainer_node)
  add_executable(exchange_bench ${CMAKE_CURRENT_LIST_DIR}/exchange_bench.cc)
  target_link_libraries(exchange_bench PRIVATE noloco_trainer_node ${TORCH_LIBRARIES})
  target_include_directories(exchange_bench SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
endif()
