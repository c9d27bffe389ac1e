# Installs tests/schema/node_modules from the committed package-lock.json
# when it is missing or older than the lock (npm rewrites
# node_modules/.package-lock.json on every install).
# Run by the ctest fixture schema_npm_ci: cmake -DDIR=... -DNPM=... -P npm-ci.cmake
set(stamp "${DIR}/node_modules/.package-lock.json")
if(EXISTS "${stamp}" AND NOT "${DIR}/package-lock.json" IS_NEWER_THAN "${stamp}"
   AND NOT "${DIR}/package.json" IS_NEWER_THAN "${stamp}")
  message(STATUS "tests/schema/node_modules is up to date")
  return()
endif()
execute_process(COMMAND "${NPM}" ci --no-audit --no-fund
  WORKING_DIRECTORY "${DIR}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "npm ci failed in tests/schema (${rc})")
endif()
