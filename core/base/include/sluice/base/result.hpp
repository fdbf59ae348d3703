#pragma once
// Control-plane results: a value or an error with a plain-words message.
// Data-path calls do not use this type; they return counts or bools.

#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace sluice {

// An error for people: what failed, in one line, plus the system error code
// when one exists (so callers can branch on it without parsing text).
struct error {
  std::string message;     // what failed, in one line, for a log or a person
  std::error_code code{};  // the system error behind it, if any (empty otherwise)

  // An error from an errno value: the message is `what`, a colon and the
  // system's text for err ("bind 0.0.0.0:80: Permission denied"); code holds
  // err.
  static error from_errno(int err, std::string what) {
    std::error_code ec(err, std::system_category());
    return error{std::move(what) + ": " + ec.message(), ec};
  }
};

// A value of type T, or an error saying why there is none. Test it (ok() or
// operator bool) before taking the value: value() on an error throws
// std::bad_variant_access. A plain value type, as thread-safe as T.
template <class T>
class [[nodiscard]] result {
 public:
  // Success, holding `value`; implicit, so a function returning result<T> can
  // return a T.
  result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  // Failure, holding `e`; implicit, so a function can return an error directly.
  result(error e) : v_(std::move(e)) {}                // NOLINT
  // Holds a value (not an error).
  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  // Same as ok().
  explicit operator bool() const noexcept { return ok(); }
  // The value; throws std::bad_variant_access if this holds an error.
  T& value() & { return std::get<0>(v_); }
  // The value, moved out; throws std::bad_variant_access if this holds an
  // error.
  T&& value() && { return std::get<0>(std::move(v_)); }
  // The value; throws std::bad_variant_access if this holds an error.
  const T& value() const& { return std::get<0>(v_); }
  // The value (as value()).
  T& operator*() & { return value(); }
  // Member access to the value (as value()).
  T* operator->() { return &value(); }
  // The error; throws std::bad_variant_access if this holds a value.
  [[nodiscard]] const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

// result<void>: success or an error.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  // Failure, holding `e`; implicit, so a function can return an error directly.
  // (Default construction is success.)
  result(error e) : err_(std::move(e)), ok_(false) {}  // NOLINT
  // No error.
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  // Same as ok().
  explicit operator bool() const noexcept { return ok_; }
  // The error; meaningless (an empty error) when ok().
  [[nodiscard]] const error& err() const { return err_; }

 private:
  error err_;
  bool ok_ = true;
};

}  // namespace sluice
