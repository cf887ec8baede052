# checkpoint_train_bench: training tokens/s with and without a checkpoint written in the background.
if(TARGET noloco_trainer_node)
  add_executable(checkpoint_train_bench ${CMAKE_CURRENT_LIST_DIR}/checkpoint_train_bench.cc
                                        ${CMAKE_CURRENT_LIST_DIR}/matmul_throughput.cc
                                        $<TARGET_OBJECTS:noloco_process_defaults>)
  target_link_libraries(checkpoint_train_bench PRIVATE noloco_trainer_node ${TORCH_LIBRARIES})
  target_include_directories(checkpoint_train_bench SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
endif()
