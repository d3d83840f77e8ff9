{
  "targets": [
    {
      "target_name": "sluice_native",
      "sources": ["src/native/sluice_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
