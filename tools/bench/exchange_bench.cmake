# exchange_bench: one outer step's exchange between two processes at a real model size (time,
# bytes, peak memory above the model state), through the node's own code.
if(TARGET noloco_trainer_node)
  add_executable(exchange_bench ${CMAKE_CURRENT_LIST_DIR}/exchange_bench.cc)
  target_link_libraries(exchange_bench PRIVATE noloco_trainer_node ${TORCH_LIBRARIES})
  target_include_directories(exchange_bench SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
endif()
# state_resume_bench: state sync at a real model size cut by killing the server (state_resume.sh).
if(TARGET noloco_trainer_node)
  add_executable(state_resume_bench ${CMAKE_CURRENT_LIST_DIR}/state_resume_bench.cc)
  target_link_libraries(state_resume_bench PRIVATE noloco_trainer_node ${TORCH_LIBRARIES})
  target_include_directories(state_resume_bench SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
endif()
