#pragma once
// Certificates for the TLS tests, made at test time with the openssl command
// into a folder of the test's (nothing is committed): a self-signed
// certificate for one DNS name and its key, `dir/NAME.crt` and `dir/NAME.key`.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace sluice::test {

// keyopts: "ec -pkeyopt ec_paramgen_curve:P-256" or "rsa:2048".
inline void make_cert_pair(const std::filesystem::path& dir, const std::string& name, const std::string& keyopts,
                           const std::string& cn) {
  const std::string cmd = "openssl req -x509 -newkey " + keyopts + " -nodes -keyout " + (dir / (name + ".key")).string() +
                          " -out " + (dir / (name + ".crt")).string() + " -days 2 -subj /CN=" + cn +
                          " -addext subjectAltName=DNS:" + cn + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace sluice::test
