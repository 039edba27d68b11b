from tbyte_policy.cli import main

main()
