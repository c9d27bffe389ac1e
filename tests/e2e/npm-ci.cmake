# Installs tests/e2e/node_modules from the committed package-lock.json when
# it is missing or older than the lock (npm writes node_modules/.package-lock.json
# on every install, so its age tells whether the tree matches the lock).
# Run by the ctest fixture e2e_npm_ci: cmake -DE2E_DIR=... -DNPM=... -P npm-ci.cmake
set(lock "${E2E_DIR}/package-lock.json")
set(stamp "${E2E_DIR}/node_modules/.package-lock.json")
if(EXISTS "${stamp}" AND NOT "${lock}" IS_NEWER_THAN "${stamp}"
   AND NOT "${E2E_DIR}/package.json" IS_NEWER_THAN "${stamp}")
  message(STATUS "tests/e2e/node_modules is up to date")
  return()
endif()
execute_process(COMMAND "${NPM}" ci --no-audit --no-fund
  WORKING_DIRECTORY "${E2E_DIR}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "npm ci failed in tests/e2e (${rc})")
endif()
